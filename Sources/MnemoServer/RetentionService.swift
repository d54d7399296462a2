import Dispatch
import Logging
import MnemoCore
import ServiceLifecycle

/// Runs the episodic retention policies on a schedule: every `intervalMs`, each policy
/// first summarizes what it is about to delete, then prunes (see
/// ``EpisodeStore/applyRetention(_:)``). The SQLite work runs on a dispatch queue, never
/// on the cooperative pool or an event loop. Stops on graceful shutdown (a run in
/// progress finishes first).
public struct RetentionService: Service {
    let engine: Engine
    let policies: [RetentionPolicy]
    let intervalMs: Int
    let logger: Logger

    /// A job applying `policies` every `intervalMs` (the first run after one interval).
    public init(engine: Engine, policies: [RetentionPolicy], intervalMs: Int, logger: Logger) {
        self.engine = engine
        self.policies = policies
        self.intervalMs = intervalMs
        self.logger = logger
    }

    /// Runs until graceful shutdown.
    public func run() async throws {
        guard !policies.isEmpty, intervalMs > 0 else {
            try? await gracefulShutdown()
            return
        }
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(intervalMs))
                if Task.isCancelled { break }
                await runOnce()
            }
        }
    }

    /// One pass over every policy, off the cooperative pool.
    func runOnce() async {
        let episodic = engine.episodic
        let policies = self.policies
        let logger = self.logger
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            DispatchQueue.global(qos: .utility).async {
                do {
                    for outcome in try episodic.applyRetention(policies) {
                        if outcome.prune.deleted > 0 || outcome.summarized > 0 {
                            logger.info("episodic retention applied", metadata: [
                                "policy": "\(outcome.policy.description)", "summarized": "\(outcome.summarized)",
                                "summaries": "\(outcome.summaries)", "deleted": "\(outcome.prune.deleted)",
                                "kept": "\(outcome.prune.kept)",
                            ])
                        }
                    }
                } catch {
                    logger.error("episodic retention failed", metadata: ["error": "\(error)"])
                }
                done.resume()
            }
        }
    }
}
