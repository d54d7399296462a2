import MnemoCore
import MnemoProtocol
import Synchronization

/// A `claim.acquire` with `wait_ms` that could not be granted at once: answered later by
/// its connection's event loop, when the claim ends (signaled) or at the holder's expiry,
/// and with `CLAIMED` at the deadline. Replies after it on the same connection wait, so
/// replies stay in request order.
final class ParkedCall: Sendable {
    let id: JSON
    let ns: String
    let resource: String
    let ttlMs: Int64
    let deadlineNs: UInt64
    let caller: Caller
    /// Set by the claim's end; the loop retries at once.
    let signaled = Atomic<Bool>(false)
    /// Monotonic time of the next retry (the holder's expiry, or the deadline).
    let retryAtNs: Atomic<UInt64>

    init(id: JSON, ns: String, resource: String, ttlMs: Int64, deadlineNs: UInt64, retryAtNs: UInt64, caller: Caller) {
        self.id = id
        self.ns = ns
        self.resource = resource
        self.ttlMs = ttlMs
        self.deadlineNs = deadlineNs
        self.caller = caller
        self.retryAtNs = Atomic(min(retryAtNs, deadlineNs))
    }
}
