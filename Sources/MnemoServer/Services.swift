import Logging
import MnemoCore
import ServiceLifecycle

/// Runs the socket server until graceful shutdown, then drains it.
public struct ServerService: Service {
    let server: Server

    /// Wraps a bound server.
    public init(server: Server) { self.server = server }

    /// Starts the loops, waits for shutdown, then stops accepting and drains.
    public func run() async throws {
        server.start()
        try? await gracefulShutdown()
        server.shutdown()
    }
}

/// Removes expired keys, claims, results and inbox entries in the background, like Redis's active expiry:
/// every `interval`, it removes due keys in small locked steps (earliest expiry first)
/// until none are due or the step's CPU budget is spent, so that a mass expiry cannot
/// stall requests. Reads never depend on it: an expired key is invisible at once.
public struct ExpirySweeper: Service {
    let engine: Engine
    let intervalMs: Int
    let budgetNs: UInt64
    let snapshotBytes: Int
    let logger: Logger

    /// A sweeper running every `intervalMs`, spending at most `budgetMs` per run, and
    /// snapshotting the journal once it grew by `snapshotBytes`.
    public init(engine: Engine, intervalMs: Int = 100, budgetMs: Int = 5, snapshotBytes: Int = 64 << 20, logger: Logger) {
        self.engine = engine
        self.intervalMs = intervalMs
        self.budgetNs = UInt64(budgetMs) * 1_000_000
        self.snapshotBytes = snapshotBytes
        self.logger = logger
    }

    /// Sweeps until graceful shutdown.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                // Cancellation (graceful shutdown) ends the sleep early; that is not an error.
                try? await Task.sleep(for: .milliseconds(intervalMs))
                if Task.isCancelled { break }
                let start = engine.time.monotonicNs()
                var removed = 0
                while true {
                    let step = engine.working.sweepExpired(max: 128)
                    removed += step.removed
                    if !step.more || engine.time.monotonicNs() - start > budgetNs { break }
                }
                if removed > 0 { logger.debug("expired items removed", metadata: ["count": "\(removed)"]) }
                engine.working.snapshotIfNeeded(thresholdBytes: snapshotBytes)
            }
        }
    }
}
