import Dispatch
import Synchronization

/// A call run on a worker thread instead of its event loop (SQLite and BLAS work: the
/// episodic and semantic tiers). The loop holds the connection's later replies behind it,
/// so replies stay in request order, and sends its reply once the worker is done.
final class OffloadedCall: Sendable {
    private let reply = Mutex<[UInt8]?>(nil)
    private let done = DispatchSemaphore(value: 0)

    /// Called once by the worker with the whole reply line (with its `\n`).
    func complete(_ bytes: [UInt8]) {
        reply.withLock { $0 = bytes }
        done.signal()
    }

    /// The reply line once the worker is done; nil before.
    func takeReply() -> [UInt8]? {
        reply.withLock { $0 }
    }

    /// Blocks until the worker is done (shutdown: a write it applied must be answered).
    func wait() -> [UInt8] {
        done.wait()
        done.signal()
        return reply.withLock { $0 } ?? []
    }
}
