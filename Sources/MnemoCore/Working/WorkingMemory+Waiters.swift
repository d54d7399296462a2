import Dispatch
import MnemoProtocol

/// What a parked call waits for: a claim to end, a barrier generation or a proposal
/// round to end, or (`revision`) this node to apply more of the cluster's feed.
public struct WaitKey: Hashable, Sendable {
    public enum Kind: UInt8, Sendable { case claim, barrier, proposal, revision }
    let kind: Kind
    let key: ClaimKey

    init(_ kind: Kind, _ key: ClaimKey) {
        self.kind = kind
        self.key = key
    }

    public init(_ kind: Kind, ns: String, name: String) { self.init(kind, ClaimKey(ns: ns, resource: name)) }

    /// Any advance of the revision this node has applied.
    public static let revision = WaitKey(.revision, ClaimKey(ns: "", resource: ""))
}

extension WorkingMemory {
    /// Calls `callback` once when the claim on `ns/resource` ends (release or expiry).
    /// - Returns: an id for ``cancelWait(_:id:)``.
    @discardableResult
    public func onClaimEnd(ns: String, resource: String, _ callback: @escaping @Sendable () -> Void) -> UInt64 {
        addWaiter(WaitKey(.claim, ns: ns, name: resource), callback)
    }

    /// Calls `callback` once when this node's revision next advances (a cluster node's feed
    /// applied, or one of its own writes).
    @discardableResult
    public func onRevision(_ callback: @escaping @Sendable () -> Void) -> UInt64 { addWaiter(.revision, callback) }

    /// Blocks the calling thread (a worker, never an event loop) until this node has
    /// applied revision `target` or `timeoutMs` passed; whether it was reached.
    public func awaitRevision(_ target: Int64, timeoutMs: Int) -> Bool {
        let deadline = DispatchTime.now() + .milliseconds(timeoutMs)
        while revision < target {
            let advanced = DispatchSemaphore(value: 0)
            // Registered before looking, so an advance in between still wakes it.
            let id = onRevision { advanced.signal() }
            if revision >= target {
                cancelWait(.revision, id: id)
                break
            }
            if advanced.wait(timeout: deadline) == .timedOut {
                cancelWait(.revision, id: id)
                return revision >= target
            }
        }
        return true
    }

    /// Wakes the calls waiting for the revision to advance.
    func revisionWaiters() { for w in takeWaiters(.revision) { w() } }

    /// Forgets a registration (the wait ended, or its connection closed).
    public func cancelWait(_ key: WaitKey, id: UInt64) {
        waiters.withLock { w in
            w.byKey[key]?[id] = nil
            if w.byKey[key]?.isEmpty == true { w.byKey[key] = nil }
        }
    }

    func addWaiter(_ key: WaitKey, _ callback: @escaping @Sendable () -> Void) -> UInt64 {
        waiters.withLock { w in
            let id = w.next
            w.next += 1
            w.byKey[key, default: [:]][id] = callback
            return id
        }
    }

    /// Journals and applies `change`, which ends what `key`'s waiters wait for, then wakes
    /// them. Lock held.
    func commitEnding(_ s: inout WorkingState, _ change: Change, _ key: WaitKey) throws(WireError) {
        try commit(&s, change)
        for waiter in takeWaiters(key) { waiter() }
    }

    /// Removes and returns the callbacks waiting on `key` (they only flag and wake, so
    /// calling them with the store lock held is safe).
    func takeWaiters(_ key: WaitKey) -> [@Sendable () -> Void] {
        waiters.withLock { w in w.byKey.removeValue(forKey: key).map { Array($0.values) } ?? [] }
    }
}
