import ArgumentParser
import Dispatch
import Foundation
import Logging
import MnemoCore
import MnemoServer
import ServiceLifecycle

/// `mnemod`: the Mnemo daemon.
@main
struct Mnemod: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mnemod",
        abstract: "The Mnemo memory daemon: working, episodic and semantic memory for agents over a Unix socket.",
        discussion: """
            Settings resolve as: flags > environment (MNEMO_SOCKET, MNEMO_DATA_DIR, MNEMO_CONFIG) > \
            the TOML config file > embedded defaults. Stop it with SIGTERM or SIGINT.
            """)

    @Option(name: .long, help: "Unix socket path (default: $MNEMO_SOCKET, $XDG_RUNTIME_DIR/mnemo/mnemo.sock, ./mnemo.sock).")
    var socket: String?

    @Option(name: .long, help: "Data directory (default: $MNEMO_DATA_DIR, $XDG_STATE_HOME/mnemo, ~/.local/state/mnemo).")
    var dataDir: String?

    @Option(name: .long, help: "TOML configuration file (default: $MNEMO_CONFIG).")
    var config: String?

    @Option(name: .long, help: "Event-loop threads (default: half the cores, at least one).")
    var threads: Int?

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String?

    @Option(name: .long, help: "Durability of working memory: strict, normal (default) or volatile.")
    var durability: String?

    @Option(name: .long, help: "Embedding model directory (default: $MNEMO_MODEL_DIR, semantic.embedder.model_dir, ~/.cache/mnemo/models/all-MiniLM-L6-v2).")
    var modelDir: String?

    func run() async throws {
        // First, before anything is opened: OpenBLAS must load with kernels fit for this CPU.
        BLAS.restartWithBetterKernelsIfNeeded()
        var cfg: Config
        do throws(ConfigError) {
            cfg = try resolve()
        } catch {
            FileHandle.standardError.write(Data("mnemod: \(error)\n".utf8))
            throw ExitCode(78)  // EX_CONFIG
        }
        let level = cfg.logLevel
        LoggingSystem.bootstrap { LogfmtHandler(label: $0, level: level) }
        let logger = Logger(label: "mnemod")
        signal(SIGPIPE, SIG_IGN)
        raiseDescriptorLimit(for: cfg.limits.maxConnections, logger: logger)

        if cfg.semantic.blasThreads > 0 { BLAS.setThreads(cfg.semantic.blasThreads) }
        logger.info("blas", metadata: ["library": "\(BLAS.loaded)"])
        do throws(ConfigError) {
            let env = ProcessInfo.processInfo.environment["MNEMO_MODEL_DIR"].flatMap { $0.isEmpty ? nil : $0 }
            cfg.semantic.settings.embedder = try cfg.semantic.makeEmbedder(modelDir: modelDir ?? env, logger: logger)
        } catch {
            FileHandle.standardError.write(Data("mnemod: \(error)\n".utf8))
            throw ExitCode(78)  // EX_CONFIG
        }
        let transfer: TransferDirectory
        do throws(ConfigError) {
            transfer = try TransferDirectory(path: cfg.transferDir ?? cfg.dataDir + "/transfer",
                                             allowsAbsolutePaths: cfg.allowAbsoluteTransferPaths)
        } catch {
            FileHandle.standardError.write(Data("mnemod: \(error)\n".utf8))
            throw ExitCode(78)  // EX_CONFIG
        }
        if transfer.allowsAbsolutePaths {
            logger.warning("allow_absolute_transfer_paths is on: any principal allowed to export may write files anywhere mnemod can")
        }
        let engine: Engine
        do {
            engine = try Engine(limits: cfg.limits, durability: cfg.durability, dataDir: cfg.dataDir,
                                resultRetentionMs: cfg.resultRetentionMs, inboxRetentionMs: cfg.inboxRetentionMs,
                                semantic: cfg.semantic.settings, summarizer: cfg.episodic.summarizer, episodic: cfg.episodic.settings,
                                principals: cfg.principals, auditRetentionMs: cfg.auditRetentionMs,
                                auditMutations: cfg.auditMutations, transfer: transfer, cluster: cfg.cluster, logger: logger)
        } catch where error.isCluster {
            logger.critical("cannot join the cluster", metadata: ["error": "\(error)"])
            throw ExitCode(69)  // EX_UNAVAILABLE
        } catch where error.isCorruption {
            logger.critical("stored data is damaged; refusing to start", metadata: ["error": "\(error)", "data_dir": "\(cfg.dataDir)"])
            throw ExitCode(65)  // EX_DATAERR
        } catch {
            logger.critical("cannot open the data directory", metadata: ["error": "\(error)", "data_dir": "\(cfg.dataDir)"])
            throw ExitCode(74)  // EX_IOERR
        }
        defer { engine.close() }
        // SIGHUP re-reads the configuration and swaps the principals and grants in place:
        // connections stay, their next call uses the new grants. Other settings need a restart.
        signal(SIGHUP, SIG_IGN)
        let reload = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
        reload.setEventHandler { [self] in
            do {
                let next = try resolve()
                engine.access.reload(next.principals)
                logger.notice("configuration reloaded", metadata: ["principals": "\(next.principals.count)"])
            } catch {
                logger.error("configuration not reloaded; the old grants stay", metadata: ["error": "\(error)"])
            }
        }
        reload.resume()
        defer { reload.cancel() }
        let server: Server
        do {
            server = try Server(socketPath: cfg.socket, inheritedFD: Systemd.inheritedListener(),
                                groupAccess: cfg.socketGroupAccess, threads: cfg.threads, engine: engine, logger: logger)
        } catch {
            logger.critical("cannot start", metadata: ["error": "\(error)"])
            throw ExitCode(69)  // EX_UNAVAILABLE
        }
        let group = ServiceGroup(
            configuration: .init(
                services: [
                    .init(service: ServerService(server: server)),
                    .init(service: PeriodicService.expirySweeper(engine: engine, intervalMs: cfg.sweepIntervalMs,
                                                                 budgetMs: cfg.sweepBudgetMs, snapshotBytes: cfg.snapshotBytes,
                                                                 logger: logger)),
                    .init(service: PeriodicService.semanticMaintainer(engine: engine, intervalMs: cfg.semantic.maintenanceIntervalMs,
                                                                      logger: logger)),
                    .init(service: PeriodicService.retention(engine: engine, policies: cfg.episodic.retention,
                                                             intervalMs: cfg.episodic.jobIntervalMs, logger: logger)),
                ],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        try await group.run()
    }

    private func resolve() throws(ConfigError) -> Config {
        var cfg = Config()
        let env = ProcessInfo.processInfo.environment
        if let path = config ?? env["MNEMO_CONFIG"], !path.isEmpty { try cfg.apply(tomlFile: path) }
        if let s = env["MNEMO_SOCKET"], !s.isEmpty { cfg.socket = s }
        if let d = env["MNEMO_DATA_DIR"], !d.isEmpty { cfg.dataDir = d }
        if let socket { cfg.socket = socket }
        if let dataDir { cfg.dataDir = dataDir }
        if let threads {
            guard (1...64).contains(threads) else { throw ConfigError("--threads must be 1...64") }
            cfg.threads = threads
        }
        if let durability {
            guard let d = Durability(rawValue: durability) else { throw ConfigError("--durability must be strict, normal or volatile") }
            cfg.durability = d
        }
        if let logLevel {
            guard let level = Logger.Level(rawValue: logLevel) else { throw ConfigError("--log-level \(logLevel) is not a level") }
            cfg.logLevel = level
        }
        return cfg
    }
}

/// Raises the soft limit on open files so that `max_connections` clients (plus the
/// daemon's own files) fit; warns when the hard limit does not allow it. Past the limit,
/// peers are refused with an error line rather than left hanging.
private func raiseDescriptorLimit(for connections: Int, logger: Logger) {
    var limit = rlimit()
    guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return }
    let wanted = rlim_t(connections + 256)
    if limit.rlim_cur < wanted {
        limit.rlim_cur = min(wanted, limit.rlim_max)
        _ = setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
    }
    if limit.rlim_cur < wanted {
        logger.warning("the open-files limit is below max_connections; extra peers will be refused",
                       metadata: ["nofile": "\(limit.rlim_cur)", "max_connections": "\(connections)"])
    }
}
