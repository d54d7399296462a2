import MnemoProtocol

/// One client connection. Owned by exactly one event loop and touched only on its thread.
final class Connection {
    let fd: Int32
    var session: Session
    /// Bytes read and not yet consumed as lines.
    var input = LineBuffer()
    /// Responses not yet written; `sent` bytes of it are already on the socket.
    var output = JSONWriter(capacity: 4096)
    var sent = 0
    /// Monotonic time at which the current partial line started (0: none).
    var partialSinceNs: UInt64 = 0
    /// Reading stopped because too much output is queued.
    var readPaused = false
    /// The peer closed its side, or a fatal error was answered: close once flushed.
    var closing = false
    /// Whether EPOLLOUT is in the interest set.
    var wantsWrite = false

    init(fd: Int32, peer: PeerCredentials) {
        self.fd = fd
        self.session = Session(peer: peer)
    }

    var pendingOutput: Int { output.bytes.count - sent }

    /// The longest line accepted right now (smaller before `session.hello`).
    func maxLine(_ limits: (before: Int, after: Int)) -> Int {
        session.caller == nil ? limits.before : limits.after
    }
}
