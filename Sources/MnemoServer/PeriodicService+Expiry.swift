import Logging
import MnemoCore

extension PeriodicService {
    /// Removes expired keys, claims, results and inbox entries, like Redis's active expiry:
    /// due items go in small locked steps (earliest expiry first) until none are due or the
    /// run's CPU budget (`budgetMs`) is spent, so that a mass expiry cannot stall requests;
    /// then snapshots the journal once it grew by `snapshotBytes`. Reads never depend on
    /// it: an expired key is invisible at once.
    public static func expirySweeper(engine: Engine, intervalMs: Int = 100, budgetMs: Int = 5, snapshotBytes: Int = 64 << 20,
                                     logger: Logger) -> PeriodicService {
        let budgetNs = UInt64(budgetMs) * 1_000_000
        return PeriodicService(intervalMs: intervalMs) {
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
