import MnemoCore
import MnemoProtocol
import Synchronization

/// A call with `wait_ms` that could not be answered at once (`claim.acquire` on a held
/// claim, `leader.campaign`, `barrier.arrive` before the barrier opens, `vote.get` before
/// the decision): answered later by its connection's event loop, when what it waits for
/// ends (signaled) or at the time worth looking again (a holder's expiry, a deadline),
/// and finally at its own deadline. Replies after it on the same connection wait, so
/// replies stay in request order.
final class ParkedCall: Sendable {
    /// One try. Writes the result and returns true when the call is answered; otherwise
    /// registers `waiting` for the next wake-up (``wait(until:key:id:)``) and returns false.
    /// `waiting` is nil when the call must answer now: it may not wait (no `wait_ms`, a
    /// batch) or its deadline has come. A call answered at once makes no ParkedCall.
    typealias Attempt = @Sendable (_ waiting: ParkedCall?, _ out: inout JSONWriter) throws(WireError) -> Bool

    let id: JSON
    let deadlineNs: UInt64
    /// Set by the end of what it waits for; the loop retries at once.
    let signaled = Atomic<Bool>(false)
    /// Monotonic time of the next retry.
    let retryAtNs: Atomic<UInt64>
    /// Wakes the connection's event loop.
    let wake: @Sendable () -> Void
    private let body: Attempt
    /// The store registration to cancel when answered (none: `registration.id == 0`).
    private let registration = Mutex<(key: WaitKey?, id: UInt64)>((nil, 0))

    /// Where waiting calls are counted (`admin.stats` `connections.waiting`).
    private let gauge: ServerStatus

    init(id: JSON, deadlineNs: UInt64, wake: @escaping @Sendable () -> Void, gauge: ServerStatus, _ body: @escaping Attempt) {
        self.id = id
        self.deadlineNs = deadlineNs
        self.retryAtNs = Atomic(deadlineNs)
        self.wake = wake
        self.body = body
        self.gauge = gauge
        gauge.waitingCalls.add(1, ordering: .relaxed)
    }

    // Counted while it exists: from parking until it is answered, cancelled or dropped
    // with its connection, whichever path ends it.
    deinit { gauge.waitingCalls.subtract(1, ordering: .relaxed) }

    /// What the store calls when the awaited thing ends (any thread, store lock held:
    /// only flags and wakes).
    var onEnd: @Sendable () -> Void {
        { [self] in
            signaled.store(true, ordering: .relaxed)
            wake()
        }
    }

    /// Tries to answer; `out` is written only when it returns true (always when `last`).
    func attempt(last: Bool, _ out: inout JSONWriter) throws(WireError) -> Bool {
        try body(last ? nil : self, &out)
    }

    /// Notes a registration made by an attempt, and when to look again at the latest.
    func wait(until retryAt: UInt64, key: WaitKey, id: UInt64?) {
        retryAtNs.store(min(retryAt, deadlineNs), ordering: .relaxed)
        if let id { registration.withLock { $0 = (key, id) } }
    }

    /// Forgets the registration (the call was answered or its connection closed).
    func cancel(_ wm: WorkingMemory) {
        let (key, id) = registration.withLock { r in
            defer { r = (nil, 0) }
            return r
        }
        if let key, id != 0 { wm.cancelWait(key, id: id) }
    }
}
