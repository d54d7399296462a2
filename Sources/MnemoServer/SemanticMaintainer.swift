import Logging
import MnemoCore
import MnemoProtocol
import ServiceLifecycle

/// Deletes semantic records past their TTL (each deletion takes a revision, like any
/// write) and compacts collections whose tombstones make up a quarter of their rows.
/// Searches never depend on it: an expired record is skipped at once.
public struct SemanticMaintainer: Service {
    let engine: Engine
    let intervalMs: Int
    let logger: Logger

    /// A maintainer running every `intervalMs`.
    public init(engine: Engine, intervalMs: Int, logger: Logger) {
        self.engine = engine
        self.intervalMs = intervalMs
        self.logger = logger
    }

    /// Maintains until graceful shutdown.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(intervalMs))
                if Task.isCancelled { break }
                // The group commit blocks: run it on a worker, not on a concurrency thread.
                let outcome: Result<Int, WireError> = await withCheckedContinuation { done in
                    Dispatcher.workers.async { done.resume(returning: Result { () throws(WireError) in try engine.semantic.maintain() }) }
                }
                switch outcome {
                case .success(let n) where n > 0: logger.debug("expired facts deleted", metadata: ["count": "\(n)"])
                case .success: break
                case .failure(let e): logger.warning("semantic maintenance failed", metadata: ["error": "\(e.message)"])
                }
            }
        }
    }
}
