import MnemoProtocol

/// One client connection. Owned by exactly one event loop and touched only on its thread.
final class Connection {
    let fd: Int32
    let id: UInt64
    var session: Session
    /// Replies (and notifications) that must wait behind a parked call. Sent in order.
    var held: [Held] = []
    var heldBytes = 0
    /// Bytes read and not yet consumed as lines.
    var input = LineBuffer()
    /// Responses not yet written; `sent` bytes of it are already on the socket.
    var output = JSONWriter(capacity: 4096)
    var sent = 0
    /// Bytes of output sent and dropped from `output` so far: `outputBase + i` is the
    /// position of `output.bytes[i]` in the connection's whole reply stream.
    var outputBase = 0
    /// Stream position up to which output may be sent: in `strict` mode, the end of the
    /// replies whose journal records are fsynced; unlimited otherwise.
    var sendLimit: Int
    /// Monotonic time at which the current partial line started (0: none).
    var partialSinceNs: UInt64 = 0
    /// Monotonic time of the last bytes received (or of the accept).
    var lastInputNs: UInt64
    /// Reading stopped because too much output is queued.
    var readPaused = false
    /// The peer closed its side, or a fatal error was answered: close once flushed.
    var closing = false
    /// A call of this connection runs on a worker thread: later lines wait (and reading
    /// pauses) until it is done, so a connection's calls take effect in order.
    var awaitingWorker = false
    /// Whether EPOLLOUT is in the interest set.
    var wantsWrite = false
    /// Whether it is in the loop's list of connections with replies to send.
    var isDirty = false

    init(fd: Int32, id: UInt64, loop: Int, peer: PeerCredentials, now: UInt64, strict: Bool,
         wake: @escaping @Sendable () -> Void) {
        self.fd = fd
        self.sendLimit = strict ? 0 : .max
        self.lastInputNs = now
        self.id = id
        self.session = Session(peer: peer, connection: WatchHub.ConnectionRef(loop: loop, id: id), wake: wake)
    }

    /// Bytes queued for this client, sent or held.
    var pendingOutput: Int { output.bytes.count - sent + heldBytes }

    /// The stream position of the output's end.
    var outputEnd: Int { outputBase + output.bytes.count }

    /// Whether output waits for an fsync (strict mode).
    var awaitingSync: Bool { sendLimit < outputEnd }

    /// The longest line accepted right now (smaller before `session.hello`).
    func maxLine(_ limits: (before: Int, after: Int)) -> Int {
        session.caller == nil ? limits.before : limits.after
    }
}

/// A reply that cannot be sent yet.
enum Held {
    /// Ready bytes, behind a parked call.
    case ready([UInt8])
    /// A call to be answered later.
    case parked(ParkedCall)
    /// A call running on a worker thread.
    case offloaded(OffloadedCall)
}
