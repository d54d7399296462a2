import Logging
import MnemoCore

extension PeriodicService {
    /// The episodic retention policies on a schedule: each policy first summarizes what it
    /// is about to delete, then prunes (see ``EpisodeStore/applyRetention(_:)``). Idle
    /// without policies or with `intervalMs` 0.
    public static func retention(engine: Engine, policies: [RetentionPolicy], intervalMs: Int, logger: Logger) -> PeriodicService {
        let episodic = engine.episodic
        return PeriodicService(intervalMs: policies.isEmpty ? 0 : intervalMs) {
            do {
                for outcome in try episodic.applyRetention(policies) where outcome.prune.deleted > 0 || outcome.summarized > 0 {
                    logger.info("episodic retention applied", metadata: [
                        "policy": "\(outcome.policy.description)", "summarized": "\(outcome.summarized)",
                        "summaries": "\(outcome.summaries)", "deleted": "\(outcome.prune.deleted)",
                        "kept": "\(outcome.prune.kept)",
                    ])
                }
            } catch {
                logger.error("episodic retention failed", metadata: ["error": "\(error)"])
            }
        }
    }
}
