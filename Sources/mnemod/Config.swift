import Foundation
import Logging
import MnemoCore
import MnemoProtocol
import TOMLKit

/// The daemon's configuration, resolved in order: flags > environment (`MNEMO_SOCKET`,
/// `MNEMO_DATA_DIR`, `MNEMO_CONFIG`) > the TOML file > embedded defaults.
struct Config: Sendable {
    var socket = SocketPath.fromEnvironment()
    var socketGroupAccess = false
    var dataDir = Config.defaultDataDir()
    /// Where admin.export/import/snapshot name their files; nil: `DATA_DIR/transfer`.
    var transferDir: String?
    /// Whether those calls may also take absolute paths (dangerous: off by default).
    var allowAbsoluteTransferPaths = false
    /// Event loops: half the cores (at least one). mnemod's clients are processes on the
    /// same machine (a Unix socket), so they need cores too; measured on 2 cores with the
    /// load generator beside it, one loop served 10-30% more than two (docs/design.md).
    var threads = max(1, min(ProcessInfo.processInfo.activeProcessorCount / 2, 64))
    var logLevel = Logger.Level.info
    var sweepIntervalMs = 100
    var sweepBudgetMs = 5
    var durability = Durability.normal
    var snapshotBytes = 64 << 20
    var resultRetentionMs: Int64 = 7 * 86_400_000
    var inboxRetentionMs: Int64 = 7 * 86_400_000
    var limits = Limits()
    var semantic = SemanticConfig()
    /// `[[principals]]`; empty: every local peer is the principal `local` with every right.
    var principals: [Principal] = []
    /// `[audit]`: how long entries are kept; whether allowed mutations are recorded
    /// (default: when principals are configured).
    var auditRetentionMs: Int64 = 30 * 86_400_000
    var auditMutations: Bool?
    /// `[episodic]`: the retention job's schedule and policies, the summarizer.
    var episodic = EpisodicConfig()
    /// `[cluster]`: a node of a cluster on PostgreSQL; nil: a single node.
    var cluster: ClusterSettings?

    /// `$XDG_STATE_HOME/mnemo`, else `~/.local/state/mnemo`, else `./mnemo-data`.
    static func defaultDataDir() -> String {
        if let s = SocketPath.env("XDG_STATE_HOME"), !s.isEmpty { return s + "/mnemo" }
        if let h = SocketPath.env("HOME"), !h.isEmpty { return h + "/.local/state/mnemo" }
        return "./mnemo-data"
    }

    /// Applies a TOML file. Unknown keys and values of the wrong type or range are errors,
    /// so a typo never passes silently.
    mutating func apply(tomlFile path: String) throws(ConfigError) {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigError("cannot read config file \(path): \(error.localizedDescription)")
        }
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let e as TOMLParseError {
            throw ConfigError("\(path): line \(e.source.begin.line): \(e.description)")
        } catch {
            throw ConfigError("\(path): \(error)")
        }
        try apply(table: table, file: path)
    }

    mutating func apply(table: TOMLTable, file: String) throws(ConfigError) {
        for key in table.keys {
            let value = table[key]
            func need<T>(_ v: T?, _ type: String) throws(ConfigError) -> T {
                guard let v else { throw ConfigError("\(file): \(key) must be \(type)") }
                return v
            }
            switch key {
            case "socket": socket = try need(value?.string, "a string")
            case "socket_group_access": socketGroupAccess = try need(value?.bool, "a boolean")
            case "data_dir": dataDir = try need(value?.string, "a string")
            case "transfer_dir":
                transferDir = try need(value?.string, "a string")
                guard transferDir?.isEmpty == false else { throw ConfigError("\(file): transfer_dir must not be empty") }
            case "allow_absolute_transfer_paths": allowAbsoluteTransferPaths = try need(value?.bool, "a boolean")
            case "threads":
                threads = try need(value?.int, "an integer")
                guard (1...64).contains(threads) else { throw ConfigError("\(file): threads must be 1...64") }
            case "log_level":
                let name = try need(value?.string, "a string")
                guard let level = Logger.Level(rawValue: name) else {
                    throw ConfigError("\(file): log_level must be one of trace, debug, info, notice, warning, error, critical")
                }
                logLevel = level
            case "durability":
                let name = try need(value?.string, "a string")
                guard let d = Durability(rawValue: name) else {
                    throw ConfigError("\(file): durability must be strict, normal or volatile")
                }
                durability = d
            case "limits":
                let limitsTable = try need(value?.table, "a table")
                for name in limitsTable.keys {
                    guard let v = limitsTable[name]?.int else { throw ConfigError("\(file): limits.\(name) must be an integer") }
                    try limits.set(name, to: v)
                }
            case "working":
                let wt = try need(value?.table, "a table")
                for name in wt.keys {
                    guard let v = wt[name]?.int else { throw ConfigError("\(file): working.\(name) must be an integer") }
                    switch name {
                    case "sweep_interval_ms":
                        guard (10...60_000).contains(v) else { throw ConfigError("\(file): working.sweep_interval_ms must be 10...60000") }
                        sweepIntervalMs = v
                    case "sweep_budget_ms":
                        guard (1...1000).contains(v) else { throw ConfigError("\(file): working.sweep_budget_ms must be 1...1000") }
                        sweepBudgetMs = v
                    case "snapshot_bytes":
                        guard (1 << 20...1 << 40).contains(v) else { throw ConfigError("\(file): working.snapshot_bytes must be 1 MiB...1 TiB") }
                        snapshotBytes = v
                    case "result_retention_ms":
                        guard v >= 1000 else { throw ConfigError("\(file): working.result_retention_ms must be >= 1000") }
                        resultRetentionMs = Int64(v)
                    case "inbox_retention_ms":
                        guard v >= 1000 else { throw ConfigError("\(file): working.inbox_retention_ms must be >= 1000") }
                        inboxRetentionMs = Int64(v)
                    default: throw ConfigError("\(file): unknown key working.\(name)")
                    }
                }
            case "audit":
                let t = try need(value?.table, "a table")
                for name in t.keys {
                    switch name {
                    case "retention_ms":
                        guard let v = t[name]?.int, v >= 60_000 else { throw ConfigError("\(file): audit.retention_ms must be an integer >= 60000") }
                        auditRetentionMs = Int64(v)
                    case "mutations":
                        guard let v = t[name]?.bool else { throw ConfigError("\(file): audit.mutations must be a boolean") }
                        auditMutations = v
                    default: throw ConfigError("\(file): unknown key audit.\(name)")
                    }
                }
            case "principals":
                principals = try PrincipalsConfig.parse(value, file: file)
            case "semantic":
                try semantic.apply(try need(value?.table, "a table"), file: file)
            case "episodic":
                try episodic.apply(table: try need(value?.table, "a table"), file: file)
            case "cluster":
                cluster = try ClusterConfig.parse(try need(value?.table, "a table"), file: file)
            default:
                throw ConfigError("\(file): unknown key \(key)")
            }
        }
    }
}
