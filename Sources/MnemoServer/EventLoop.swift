import CMnemoSys
#if canImport(Glibc)
import Glibc
#endif
import Logging
import MnemoCore
import MnemoProtocol
import Synchronization

/// epoll event flags (EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP, EPOLLEXCLUSIVE), as the C
/// macros do not import.
let evIn: UInt32 = 0x001
let evOut: UInt32 = 0x004
let evErr: UInt32 = 0x008
let evHup: UInt32 = 0x010
let evExclusive: UInt32 = 1 << 28

/// One epoll event loop on its own thread, serving the connections it accepted.
///
/// Requests are decoded, executed and answered on this thread, in order, with no hop to
/// another thread: the stores are guarded by short locks, which costs far less than a
/// cross-core wake-up. One iteration reads every ready connection, executes the complete
/// lines, hands the journal records to the kernel with one write, and then sends the
/// replies, one `send` per connection. In `strict` mode the loop first fsyncs the journal
/// (group commit), or, when another fsync is in progress, holds the replies until the
/// journal's sync thread has fsynced their records and goes on serving meanwhile.
///
/// Its concerns, one file each: the loop itself, reading, executing and sending (here),
/// accepting connections (`EventLoop+Accept`), replies held for an fsync or behind a
/// parked call (`EventLoop+Holding`), idle connections (`EventLoop+Idle`).
final class EventLoop: @unchecked Sendable {
    // @unchecked: every mutable field below is touched only by the loop's own thread;
    // other threads call only `stop()`, `post(_:_:)` and `wake()`, which use atomics, a
    // Mutex and the eventfd.
    let index: Int
    let epfd: Int32
    let wakeFD: Int32
    let listener: UnixListener
    let dispatcher: Dispatcher
    let engine: Engine
    let journal: Journal?
    let strict: Bool
    let limits: Limits
    let lineLimits: (before: Int, after: Int)
    let status: ServerStatus
    let logger: Logger
    let stopRequested = Atomic<Bool>(false)
    /// Notifications posted by other threads: (connection id, bytes).
    let inbox = Mutex<[(UInt64, [UInt8])]>([])
    /// Connections accepted by another loop and handed to this one.
    let adopted = Mutex<[(Int32, PeerCredentials)]>([])
    var connections: [Int32: Connection] = [:]
    var byID: [UInt64: Connection] = [:]
    /// Connections with replies to send at the end of this iteration.
    var dirty: [Connection] = []
    /// Connections whose reading resumed after backpressure, with lines still buffered:
    /// executed at the next iteration, before its journal write and replies.
    var resumed: [Connection] = []
    /// Connections with held replies.
    var holding: [UInt64: Connection] = [:]
    /// Strict mode: connections whose output up to a stream position may go once the
    /// journal is fsynced through an LSN, oldest first (LSNs ascending).
    var awaitingSync: [(lsn: UInt64, output: [(Connection, end: Int)])] = []
    var readBuffer = [UInt8](repeating: 0, count: 64 << 10)
    var scratch = JSONWriter(capacity: 4096)
    var lastIdleCheckNs: UInt64 = 0
    var lastAcceptWarningNs: UInt64 = 0
    /// When the loop stopped watching the listener (no descriptor to spare), it resumes at
    /// this monotonic time (0: watching).
    var acceptPausedUntilNs: UInt64 = 0
    var thread: pthread_t?
    var hub: WatchHub?
    /// Every loop of the server (this one included), set before `start()`: accepted
    /// connections are spread over them round-robin, so that clients that connect in a
    /// burst do not all land on the loop that happened to wake first.
    var loops: [EventLoop] = []

    init(index: Int, listener: UnixListener, dispatcher: Dispatcher, status: ServerStatus, logger: Logger) throws(SystemError) {
        self.index = index
        self.listener = listener
        self.dispatcher = dispatcher
        self.engine = dispatcher.engine
        self.journal = dispatcher.engine.working.journal
        self.strict = dispatcher.engine.durability == .strict
        self.limits = dispatcher.engine.limits
        self.lineLimits = (limits.maxLineBytesBeforeHello, limits.maxLineBytes)
        self.status = status
        self.logger = logger
        epfd = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epfd >= 0 else { throw SystemError("epoll_create1") }
        wakeFD = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        guard wakeFD >= 0 else { throw SystemError("eventfd") }
        // Every loop waits on the listening socket; EPOLLEXCLUSIVE wakes only one of them
        // per incoming connection.
        try register(listener.fd, evIn | evExclusive, add: true)
        try register(wakeFD, evIn, add: true)
        if strict { journal?.addSyncListener { [weak self] in self?.wake() } }
    }

    func start() {
        thread = Threads.start("mnemo-loop-\(index)", joinable: true) { [self] in run() }
    }

    /// Asks the loop to finish: it answers what it has read, flushes and closes.
    func stop() {
        stopRequested.store(true, ordering: .releasing)
        wake()
    }

    func join() {
        if let thread { Threads.join(thread) }
    }

    /// Wakes the loop from another thread.
    func wake() {
        var one: UInt64 = 1
        _ = write(wakeFD, &one, 8)
    }

    /// Queues a notification for one of this loop's connections (any thread).
    func post(_ connection: UInt64, _ bytes: [UInt8]) {
        let first = inbox.withLock { q in
            q.append((connection, bytes))
            return q.count == 1
        }
        if first { wake() }
    }

    // MARK: the loop

    func run() {
        var events = [epoll_event](repeating: epoll_event(), count: 256)
        while !stopRequested.load(ordering: .acquiring) {
            let n = epoll_wait(epfd, &events, Int32(events.count), nextTimeoutMs())
            if n < 0 && errno != EINTR {
                logger.error("epoll_wait failed", metadata: ["errno": "\(errno)"])
                break
            }
            for i in 0..<Int(max(0, n)) {
                let fd = events[i].data.fd
                let flags = events[i].events
                if fd == listener.fd {
                    acceptConnections()
                } else if fd == wakeFD {
                    var value: UInt64 = 0
                    _ = read(wakeFD, &value, 8)
                } else if let conn = connections[fd] {
                    if flags & evOut != 0 { flush(conn) }
                    if flags & (evIn | evHup | evErr) != 0, connections[fd] != nil { readable(conn) }
                    // The peer is gone in both directions: nothing more can be delivered.
                    if flags & (evHup | evErr) != 0, conn.closing, connections[fd] != nil { closeConnection(conn) }
                }
            }
            if acceptPausedUntilNs != 0 && engine.time.monotonicNs() >= acceptPausedUntilNs {
                acceptPausedUntilNs = 0
                try? register(listener.fd, evIn | evExclusive, add: true)
            }
            let again = resumed
            resumed.removeAll(keepingCapacity: true)
            for conn in again where connections[conn.fd] === conn {
                processLines(conn)
                markDirty(conn)
            }
            drainInbox()
            releaseHeld()
            releaseSynced()
            sendReplies()
            checkIdle()
        }
        // Shutting down: answer parked calls, make held replies durable, send everything.
        for conn in holding.values {
            for (i, h) in conn.held.enumerated() {
                switch h {
                case .ready:
                    continue
                case .parked(let call):
                    var w = JSONWriter(capacity: 160)
                    RPC.writeError(id: call.id, .app(.shuttingDown, "mnemod is shutting down"), &w)
                    w.byte(0x0A)
                    conn.held[i] = .ready(w.bytes)
                case .offloaded(let call):
                    // It may have applied a write: wait for its real answer.
                    conn.held[i] = .ready(call.wait())
                }
            }
        }
        drainInbox()
        releaseHeld()
        for conn in holding.values { markDirty(conn) }
        sendReplies()
        if let journal, strict, !awaitingSync.isEmpty {
            guard journal.syncThrough(journal.appendedLSN) else { journalFailed() }
            releaseSynced()
        }
        for conn in Array(connections.values) {
            flush(conn)
            closeConnection(conn)
        }
        Glibc.close(wakeFD)
        Glibc.close(epfd)
    }

    /// Hands journal records to the kernel, then sends every connection's replies (in
    /// strict mode: lets them go once the records are fsynced): no reply leaves before
    /// what it reflects is journaled.
    func sendReplies() {
        guard !dirty.isEmpty else { return }
        let conns = dirty
        dirty.removeAll(keepingCapacity: true)
        for conn in conns { conn.isDirty = false }
        if let journal {
            guard let written = journal.writeOut() else { journalFailed() }
            if strict {
                release(conns, through: written)
                return
            }
        }
        for conn in conns where connections[conn.fd] === conn { flush(conn) }
    }

    func markDirty(_ conn: Connection) {
        guard !conn.isDirty else { return }
        conn.isDirty = true
        dirty.append(conn)
    }

    func nextTimeoutMs() -> Int32 {
        if !resumed.isEmpty || !dirty.isEmpty { return 0 }
        if acceptPausedUntilNs != 0 { return 100 }
        guard !holding.isEmpty else { return 250 }
        let now = engine.time.monotonicNs()
        var next: UInt64 = now + 250_000_000
        for conn in holding.values {
            if case .parked(let p)? = conn.held.first { next = min(next, p.retryAtNs.load(ordering: .relaxed)) }
        }
        return Int32(clamping: next > now ? (next - now + 999_999) / 1_000_000 : 0)
    }

    func readable(_ conn: Connection) {
        guard !conn.readPaused, !conn.closing else { return }
        let n = readBuffer.withUnsafeMutableBytes { read(conn.fd, $0.baseAddress, $0.count) }
        if n > 0 {
            readBuffer.withUnsafeBytes { conn.input.append(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            conn.lastInputNs = engine.time.monotonicNs()
            processLines(conn)
        } else if n == 0 {
            // The peer finished sending: answer what it sent, then close. Stop watching
            // for input (a level-triggered EOF would wake the loop forever).
            conn.closing = true
            updateInterest(conn)
            processLines(conn)
        } else if errno == EAGAIN || errno == EINTR {
            return
        } else {
            closeConnection(conn)
            return
        }
        markDirty(conn)
    }

    /// Executes every complete line buffered on `conn`, queueing the replies.
    func processLines(_ conn: Connection) {
        var completedLine = false
        while !conn.awaitingWorker, conn.pendingOutput < limits.maxPendingOutputBytes,
            let line = conn.input.next(maxLine: conn.maxLine(lineLimits))
        {
            scratch.bytes.removeAll(keepingCapacity: true)
            completedLine = true
            switch line {
            case .tooLong:
                let max = conn.maxLine(lineLimits)
                RPC.writeError(id: .null, .limit(conn.session.caller == nil ? "max_line_bytes_before_hello" : "max_line_bytes",
                                                 max: max, "request line longer than \(max) bytes"), &scratch)
            case .line(let range):
                if range.isEmpty { continue }
                handleLine(conn, range)
            }
            if !scratch.bytes.isEmpty {
                scratch.byte(0x0A)
                emit(conn, scratch.bytes)
            }
            if let parked = conn.session.parked {
                conn.session.parked = nil
                park(conn, .parked(parked))
            } else if let offloaded = conn.session.offloaded {
                conn.session.offloaded = nil
                park(conn, .offloaded(offloaded))
                conn.awaitingWorker = true
                if !conn.readPaused {
                    conn.readPaused = true
                    updateInterest(conn)
                }
            }
        }
        conn.input.compact()
        // The line deadline counts from a line's first byte, not its latest one: a client
        // sending one byte a second cannot hold a buffer forever.
        if conn.input.hasPartialLine {
            if conn.partialSinceNs == 0 || completedLine { conn.partialSinceNs = engine.time.monotonicNs() }
        } else {
            conn.partialSinceNs = 0
        }
        if conn.pendingOutput >= limits.maxPendingOutputBytes && !conn.readPaused {
            conn.readPaused = true
            updateInterest(conn)
        }
    }

    /// Queues reply bytes: sent at the end of the iteration (after the journal write and,
    /// in strict mode, its fsync), or held behind a parked call of the same connection.
    func emit(_ conn: Connection, _ bytes: [UInt8]) {
        if conn.held.isEmpty {
            conn.output.raw(bytes)
            return
        }
        conn.held.append(.ready(bytes))
        conn.heldBytes += bytes.count
        holding[conn.id] = conn
    }

    /// Delivers notifications posted by other threads; a client that does not read them
    /// loses its watches (with an error event) rather than growing the server's memory.
    func drainInbox() {
        for (fd, peer) in adopted.withLock({ q in
            let items = q
            q.removeAll()
            return items
        }) {
            adopt(fd, peer)
        }
        let items = inbox.withLock { q in
            let items = q
            q.removeAll(keepingCapacity: true)
            return items
        }
        for (id, bytes) in items {
            guard let conn = byID[id], !conn.closing else { continue }
            if conn.pendingOutput + bytes.count > limits.maxPendingOutputBytes {
                let ids = hub?.cancelAll(connection: conn.session.connection) ?? []
                for watchID in ids {
                    var w = JSONWriter(capacity: 256)
                    w.raw("{\"jsonrpc\":\"2.0\",\"method\":\"event\",\"params\":{\"watch_id\":")
                    w.string(watchID)
                    w.raw(",\"error\":")
                    WireError.limit("max_pending_output_bytes", max: limits.maxPendingOutputBytes,
                                    "watch cancelled: the client is not reading its events").write(to: &w)
                    w.raw("}}\n")
                    emit(conn, w.bytes)
                }
                markDirty(conn)
                continue
            }
            emit(conn, bytes)
            markDirty(conn)
        }
    }

    func handleLine(_ conn: Connection, _ range: Range<Int>) {
        conn.input.storage.withUnsafeBufferPointer { buf in
            dispatcher.handle(line: UnsafeBufferPointer(rebasing: buf[range]), session: &conn.session, out: &scratch,
                              shard: index, canPark: true)
        }
    }

    /// Sends the connection's output, as far as it may go (see `Connection.sendLimit`).
    func flush(_ conn: Connection) {
        let end = min(conn.output.bytes.count, conn.sendLimit - conn.outputBase)
        while conn.sent < end {
            let n = conn.output.bytes.withUnsafeBytes { buf in
                send(conn.fd, buf.baseAddress! + conn.sent, end - conn.sent, Int32(MSG_NOSIGNAL))
            }
            if n > 0 {
                conn.sent += n
            } else if n < 0 && errno == EINTR {
                continue
            } else if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                if !conn.wantsWrite {
                    conn.wantsWrite = true
                    updateInterest(conn)
                }
                return
            } else {
                closeConnection(conn)
                return
            }
        }
        // The rest waits for its fsync (strict mode).
        guard end == conn.output.bytes.count else { return }
        conn.outputBase += conn.output.bytes.count
        conn.output.bytes.removeAll(keepingCapacity: conn.output.bytes.capacity <= 1 << 20)
        conn.sent = 0
        if conn.closing && conn.held.isEmpty {
            closeConnection(conn)
            return
        }
        let resume = conn.readPaused && !conn.awaitingWorker && conn.pendingOutput < limits.maxPendingOutputBytes
        if conn.wantsWrite || resume {
            conn.wantsWrite = false
            if resume { conn.readPaused = false }
            updateInterest(conn)
        }
        if resume {
            // Lines read before the pause are still buffered; they run at the next
            // iteration, so that their journal records are written before their replies.
            resumed.append(conn)
        }
    }

    func closeConnection(_ conn: Connection) {
        guard connections.removeValue(forKey: conn.fd) != nil else { return }
        conn.session.meter?.closeConnection()
        for case .parked(let call) in conn.held { call.cancel(engine.working) }
        byID[conn.id] = nil
        holding[conn.id] = nil
        hub?.cancelAll(connection: conn.session.connection)
        _ = epoll_ctl(epfd, EPOLL_CTL_DEL, conn.fd, nil)
        Glibc.close(conn.fd)
        status.connectionsCurrent.subtract(1, ordering: .relaxed)
    }

    func updateInterest(_ conn: Connection) {
        let flags = (conn.readPaused || conn.closing ? 0 : evIn) | (conn.wantsWrite ? evOut : 0)
        do throws(SystemError) {
            try register(conn.fd, flags, add: false)
        } catch {
            closeConnection(conn)
        }
    }

    func register(_ fd: Int32, _ flags: UInt32, add: Bool) throws(SystemError) {
        var ev = epoll_event()
        ev.events = flags
        ev.data.fd = fd
        guard epoll_ctl(epfd, add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &ev) == 0 else {
            throw SystemError("epoll_ctl fd \(fd)")
        }
    }
}
