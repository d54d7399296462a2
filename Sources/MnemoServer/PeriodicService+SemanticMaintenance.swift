import Logging
import MnemoCore
import MnemoProtocol

extension PeriodicService {
    /// Deletes semantic records past their TTL (each deletion takes a revision, like any
    /// write) and compacts collections whose tombstones make up a quarter of their rows.
    /// Searches never depend on it: an expired record is skipped at once.
    public static func semanticMaintainer(engine: Engine, intervalMs: Int, logger: Logger) -> PeriodicService {
        PeriodicService(intervalMs: intervalMs) {
            do throws(WireError) {
                let n = try engine.semantic.maintain()
                if n > 0 { logger.debug("expired facts deleted", metadata: ["count": "\(n)"]) }
            } catch {
                logger.warning("semantic maintenance failed", metadata: ["error": "\(error.message)"])
            }
        }
    }
}
