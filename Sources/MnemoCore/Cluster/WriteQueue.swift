import Dispatch
import MnemoProtocol
import Synchronization

/// A write waiting for a cluster node's next PostgreSQL transaction.
class QueuedWrite: @unchecked Sendable {
    /// Signaled when the write is done, or when this thread is to lead the next batch.
    let signal = DispatchSemaphore(value: 0)
    /// Set (before `signal`) when its outcome is known.
    var finished = false

    /// Runs the write on the state (lock held), keeping its outcome.
    func run(_ s: inout WorkingState) {}
    /// Replaces its outcome: the batch it was in was not committed.
    func fail(_ error: WireError) {}
    /// Drops the body (its caller's closure must not outlive the call).
    func release() {}
}

/// A write whose body returns `T`.
final class TypedWrite<T>: QueuedWrite, @unchecked Sendable {
    private var body: ((inout WorkingState) throws(WireError) -> T)?
    var outcome: Result<T, WireError> = .failure(.internal("write not run"))

    init(_ body: @escaping (inout WorkingState) throws(WireError) -> T) { self.body = body }

    override func run(_ s: inout WorkingState) {
        guard let body else { return }
        do throws(WireError) { outcome = .success(try body(&s)) } catch { outcome = .failure(error) }
    }

    override func fail(_ error: WireError) { outcome = .failure(error) }

    override func release() { body = nil }
}

/// Group commit for a cluster node: writes that arrive while a transaction is under way
/// queue up, and the next transaction runs them all, one after the other on the same
/// state (each sees the ones before it, as on a single node), under one lock of the
/// counter row and one commit. One thread leads at a time: it takes the queue, runs the
/// batch, answers every write in it, and hands the lead to the first write queued
/// meanwhile.
final class WriteQueue: Sendable {
    private let state = Mutex<(writes: [QueuedWrite], leading: Bool)>(([], false))

    /// Queues `write`; true when the caller is to lead (no batch is under way).
    func enqueue(_ write: QueuedWrite) -> Bool {
        state.withLock { q in
            q.writes.append(write)
            if q.leading { return false }
            q.leading = true
            return true
        }
    }

    /// The writes queued so far (the leader's batch).
    func takeBatch() -> [QueuedWrite] {
        state.withLock { q in
            defer { q.writes.removeAll(keepingCapacity: true) }
            return q.writes
        }
    }

    /// After a batch: wakes every write in it but the leader's own, and hands the lead to
    /// the first write queued meanwhile (or ends leading).
    func finish(_ batch: [QueuedWrite], leader: QueuedWrite) {
        for w in batch where w !== leader {
            w.release()
            w.finished = true
            w.signal.signal()
        }
        leader.release()
        leader.finished = true
        let next: QueuedWrite? = state.withLock { q in
            if q.writes.isEmpty {
                q.leading = false
                return nil
            }
            return q.writes[0]
        }
        next?.signal.signal()
    }
}
