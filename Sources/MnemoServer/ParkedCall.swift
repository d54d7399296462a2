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
    /// The store's registration for the claim's end (0: none), cancelled when answered.
    let waiter = Atomic<UInt64>(0)
    /// Wakes the connection's event loop.
    let wake: @Sendable () -> Void

    init(id: JSON, ns: String, resource: String, ttlMs: Int64, deadlineNs: UInt64, caller: Caller,
         wake: @escaping @Sendable () -> Void) {
        self.id = id
        self.ns = ns
        self.resource = resource
        self.ttlMs = ttlMs
        self.deadlineNs = deadlineNs
        self.caller = caller
        self.retryAtNs = Atomic(deadlineNs)
        self.wake = wake
    }

    /// What the store calls when the claim ends (any thread, store lock held: only flags
    /// and wakes).
    var onEnd: @Sendable () -> Void {
        { [self] in
            signaled.store(true, ordering: .relaxed)
            wake()
        }
    }

    /// Tries to take the claim, registering for its end when it is held.
    func attempt(_ wm: WorkingMemory) throws(WireError) -> WorkingMemory.AcquireOutcome {
        let (outcome, id) = try wm.acquire(ns: ns, resource: resource, ttlMs: ttlMs, by: caller, onEnd: onEnd)
        if case .held(_, _, let retryAt) = outcome {
            retryAtNs.store(min(retryAt, deadlineNs), ordering: .relaxed)
        }
        if let id { waiter.store(id, ordering: .relaxed) }
        return outcome
    }

    /// Forgets the registration (the call was answered or its connection closed).
    func cancel(_ wm: WorkingMemory) {
        let id = waiter.exchange(0, ordering: .relaxed)
        if id != 0 { wm.cancelWait(ns: ns, resource: resource, id: id) }
    }
}
