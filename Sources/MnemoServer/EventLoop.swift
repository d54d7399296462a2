import CMnemoSys
#if canImport(Glibc)
import Glibc
#endif
import Logging
import MnemoCore
import MnemoProtocol
import Synchronization

private let evIn: UInt32 = 0x001
private let evOut: UInt32 = 0x004
private let evErr: UInt32 = 0x008
private let evHup: UInt32 = 0x010
private let evExclusive: UInt32 = 1 << 28

private let connectionIDs = Atomic<UInt64>(1)
/// Round-robin position for handing accepted connections to the loops.
private let nextLoop = Atomic<Int>(0)

/// One epoll event loop on its own thread, serving the connections it accepted.
///
/// Requests are decoded, executed and answered on this thread, in order, with no hop to
/// another thread: the stores are guarded by short locks, which costs far less than a
/// cross-core wake-up. One iteration reads every ready connection, executes the complete
/// lines, hands the journal records to the kernel with one write, and then sends the
/// replies, one `send` per connection. In `strict` mode the loop first fsyncs the journal
/// (group commit), or, when another fsync is in progress, holds the replies until the
/// journal's sync thread has fsynced their records and goes on serving meanwhile.
final class EventLoop: @unchecked Sendable {
    // @unchecked: every mutable field below is touched only by the loop's own thread;
    // other threads call only `stop()`, `post(_:_:)` and `wake()`, which use atomics, a
    // Mutex and the eventfd.
    let index: Int
    private let epfd: Int32
    private let wakeFD: Int32
    private let listener: UnixListener
    private let dispatcher: Dispatcher
    private let engine: Engine
    private let journal: Journal?
    private let strict: Bool
    private let limits: Limits
    private let lineLimits: (before: Int, after: Int)
    private let status: ServerStatus
    private let logger: Logger
    private let stopRequested = Atomic<Bool>(false)
    /// Notifications posted by other threads: (connection id, bytes).
    private let inbox = Mutex<[(UInt64, [UInt8])]>([])
    /// Connections accepted by another loop and handed to this one.
    private let adopted = Mutex<[(Int32, PeerCredentials)]>([])
    private var connections: [Int32: Connection] = [:]
    private var byID: [UInt64: Connection] = [:]
    /// Connections with replies to send at the end of this iteration.
    private var dirty: [Connection] = []
    /// Connections whose reading resumed after backpressure, with lines still buffered:
    /// executed at the next iteration, before its journal write and replies.
    private var resumed: [Connection] = []
    /// Connections with held replies.
    private var holding: [UInt64: Connection] = [:]
    /// Strict mode: connections whose output up to a stream position may go once the
    /// journal is fsynced through an LSN, oldest first (LSNs ascending).
    private var awaitingSync: [(lsn: UInt64, output: [(Connection, end: Int)])] = []
    private var readBuffer = [UInt8](repeating: 0, count: 64 << 10)
    private var scratch = JSONWriter(capacity: 4096)
    private var lastIdleCheckNs: UInt64 = 0
    private var lastAcceptWarningNs: UInt64 = 0
    /// When the loop stopped watching the listener (no descriptor to spare), it resumes at
    /// this monotonic time (0: watching).
    private var acceptPausedUntilNs: UInt64 = 0
    private var thread: pthread_t?
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
        let name = "mnemo-loop-\(index)"
        thread = spawnThread { [self] in
            mnemo_set_thread_name(name)
            run()
        }
    }

    /// Asks the loop to finish: it answers what it has read, flushes and closes.
    func stop() {
        stopRequested.store(true, ordering: .releasing)
        wake()
    }

    func join() {
        if let thread { pthread_join(thread, nil) }
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

    private func run() {
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
    private func sendReplies() {
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

    /// Strict mode: lets `conns`' output as it stands go out once the journal is fsynced
    /// through `lsn`: at once if it is, or if this thread can fsync now; else after the
    /// sync thread's fsync, while the loop goes on.
    private func release(_ conns: [Connection], through lsn: UInt64) {
        guard let journal, !journal.syncIfIdle(through: lsn) else {
            for conn in conns where connections[conn.fd] === conn {
                conn.sendLimit = conn.outputEnd
                flush(conn)
            }
            return
        }
        awaitingSync.append((lsn, conns.map { ($0, $0.outputEnd) }))
        journal.requestSync(through: lsn)
    }

    /// Strict mode: sends the output whose records the sync thread has fsynced.
    private func releaseSynced() {
        guard let journal, !awaitingSync.isEmpty else { return }
        let synced = journal.syncedLSN
        let due = awaitingSync.prefix { $0.lsn <= synced }.count
        guard due > 0 else {
            // A failed journal never syncs again: what waits would wait forever.
            if journal.failed { journalFailed() }
            return
        }
        for batch in awaitingSync[..<due] {
            for (conn, end) in batch.output where connections[conn.fd] === conn {
                conn.sendLimit = max(conn.sendLimit, end)
                flush(conn)
            }
        }
        awaitingSync.removeFirst(due)
    }

    /// Records were applied in memory when they were appended: if they cannot be made
    /// durable, no reply may acknowledge them. Crash-only: exit, and let the supervisor
    /// restart mnemod, which recovers what the journal holds.
    private func journalFailed() -> Never {
        logger.critical("the journal cannot be written; exiting rather than acknowledging writes that would be lost")
        exit(75)
    }

    private func markDirty(_ conn: Connection) {
        guard !conn.isDirty else { return }
        conn.isDirty = true
        dirty.append(conn)
    }

    private func nextTimeoutMs() -> Int32 {
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

    private func acceptConnections() {
        for _ in 0..<64 {
            let fd: Int32
            switch listener.accept(refusing: { refuse($0, "out of file descriptors") }) {
            case .peer(let peer):
                fd = peer
            case .none:
                return
            case .refused(let error):
                // Out of descriptors: the peer was refused with the spare one (otherwise the
                // listening socket stays readable and the loop spins).
                warnAcceptFailure(error)
                continue
            case .outOfDescriptors(let error):
                // Not even a spare: stop watching the listener for a moment instead of
                // spinning on it (another loop may still serve it).
                warnAcceptFailure(error)
                _ = epoll_ctl(epfd, EPOLL_CTL_DEL, listener.fd, nil)
                acceptPausedUntilNs = engine.time.monotonicNs() + 100_000_000
                return
            case .failed(let error):
                warnAcceptFailure(error)
                return
            }
            if status.connectionsCurrent.load(ordering: .relaxed) >= limits.maxConnections {
                refuse(fd, "too many connections (\(limits.maxConnections))")
                continue
            }
            guard let peer = PeerCredentials.read(fd: fd) else {
                logger.warning("SO_PEERCRED failed; closing connection", metadata: ["errno": "\(errno)"])
                Glibc.close(fd)
                continue
            }
            status.connectionsCurrent.add(1, ordering: .relaxed)
            status.connectionsTotal.add(1, ordering: .relaxed)
            let target = loops.isEmpty ? self : loops[nextLoop.add(1, ordering: .relaxed).oldValue % loops.count]
            if target === self {
                adopt(fd, peer)
            } else {
                target.handOver(fd, peer)
            }
        }
    }

    /// Answers a peer that cannot be served with one `max_connections` error line and
    /// closes it.
    private func refuse(_ fd: Int32, _ reason: String) {
        status.connectionsRefused.add(1, ordering: .relaxed)
        var w = JSONWriter()
        RPC.writeError(id: .null, .limit("max_connections", max: limits.maxConnections, reason), &w)
        w.byte(0x0A)
        _ = w.bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        Glibc.close(fd)
    }

    /// Logs an accept failure at most once a second.
    private func warnAcceptFailure(_ error: Int32) {
        let now = engine.time.monotonicNs()
        guard now - lastAcceptWarningNs > 1_000_000_000 else { return }
        lastAcceptWarningNs = now
        logger.warning("accept failed", metadata: ["error": "\(String(cString: strerror(error)))"])
    }

    /// Gives an accepted connection to this loop (any thread).
    func handOver(_ fd: Int32, _ peer: PeerCredentials) {
        adopted.withLock { $0.append((fd, peer)) }
        wake()
    }

    /// Starts serving an accepted connection on this loop.
    private func adopt(_ fd: Int32, _ peer: PeerCredentials) {
        do throws(SystemError) {
            try register(fd, evIn, add: true)
        } catch {
            logger.warning("cannot watch connection", metadata: ["error": "\(error)"])
            Glibc.close(fd)
            status.connectionsCurrent.subtract(1, ordering: .relaxed)
            return
        }
        let conn = Connection(fd: fd, id: connectionIDs.add(1, ordering: .relaxed).newValue, loop: index, peer: peer,
                              now: engine.time.monotonicNs(), strict: strict) {
            [weak self] in self?.wake()
        }
        connections[fd] = conn
        byID[conn.id] = conn
    }

    private func readable(_ conn: Connection) {
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
    private func processLines(_ conn: Connection) {
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
    private func emit(_ conn: Connection, _ bytes: [UInt8]) {
        if conn.held.isEmpty {
            conn.output.raw(bytes)
            return
        }
        conn.held.append(.ready(bytes))
        conn.heldBytes += bytes.count
        holding[conn.id] = conn
    }

    private func park(_ conn: Connection, _ call: Held) {
        conn.held.append(call)
        holding[conn.id] = conn
    }

    /// Moves held replies to the output, in order, up to the first parked call that is
    /// still waiting.
    private func releaseHeld() {
        guard !holding.isEmpty else { return }
        let now = engine.time.monotonicNs()
        for conn in Array(holding.values) {
            var moved = false
            while let head = conn.held.first {
                switch head {
                case .ready(let bytes):
                    conn.held.removeFirst()
                    conn.heldBytes -= bytes.count
                    conn.output.raw(bytes)
                    moved = true
                    continue
                case .parked(let call):
                    guard let reply = retry(call, now: now) else { break }
                    conn.held[0] = .ready(reply)
                    conn.heldBytes += reply.count
                    continue
                case .offloaded(let call):
                    guard let reply = call.takeReply() else { break }
                    conn.held[0] = .ready(reply)
                    conn.heldBytes += reply.count
                    workerDone(conn)
                    continue
                }
                break
            }
            if conn.held.isEmpty { holding[conn.id] = nil }
            if moved { markDirty(conn) }
        }
    }

    /// A connection's offloaded call finished: its later lines may run (next iteration,
    /// after this one's journal write).
    private func workerDone(_ conn: Connection) {
        conn.awaitingWorker = false
        if conn.readPaused && conn.pendingOutput < limits.maxPendingOutputBytes {
            conn.readPaused = false
            updateInterest(conn)
        }
        resumed.append(conn)
    }

    /// Tries a parked call again if it is due; the reply line when it is answered.
    private func retry(_ call: ParkedCall, now: UInt64) -> [UInt8]? {
        let signaled = call.signaled.exchange(false, ordering: .relaxed)
        guard signaled || now >= call.retryAtNs.load(ordering: .relaxed) else { return nil }
        var w = JSONWriter(capacity: 192)
        call.cancel(engine.working)
        do throws(WireError) {
            RPC.beginResult(id: call.id, &w)
            guard try call.attempt(last: now >= call.deadlineNs, &w) else { return nil }
            RPC.endResult(&w)
        } catch {
            w.bytes.removeAll(keepingCapacity: true)
            RPC.writeError(id: call.id, error, &w)
        }
        w.byte(0x0A)
        return w.bytes
    }

    /// Delivers notifications posted by other threads; a client that does not read them
    /// loses its watches (with an error event) rather than growing the server's memory.
    private func drainInbox() {
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

    private func handleLine(_ conn: Connection, _ range: Range<Int>) {
        conn.input.storage.withUnsafeBufferPointer { buf in
            dispatcher.handle(line: UnsafeBufferPointer(rebasing: buf[range]), session: &conn.session, out: &scratch,
                              shard: index, canPark: true)
        }
    }

    /// Sends the connection's output, as far as it may go (see `Connection.sendLimit`).
    private func flush(_ conn: Connection) {
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

    /// Closes connections whose partial line is older than `idle_timeout_ms`, and (when
    /// `idle_connection_timeout_ms` is set) connections silent for longer that wait for
    /// nothing: no watch, no parked call. Each gets an error line first.
    private func checkIdle() {
        let now = engine.time.monotonicNs()
        guard now - lastIdleCheckNs >= 250_000_000 else { return }
        lastIdleCheckNs = now
        let lineNs = UInt64(limits.idleTimeoutMs) * 1_000_000
        let silentNs = UInt64(limits.idleConnectionTimeoutMs) * 1_000_000
        // A connection the server paused (backpressure, a call on a worker) is not idle by
        // its own doing.
        // One cut off already, waiting for its replies' fsync, is not cut off twice.
        for conn in Array(connections.values) where !conn.readPaused && !(conn.closing && conn.awaitingSync) {
            if conn.partialSinceNs != 0 {
                guard now - conn.partialSinceNs > lineNs else { continue }
                cutOff(conn, .limit("idle_timeout_ms", max: limits.idleTimeoutMs,
                                    "request line not finished within \(limits.idleTimeoutMs) ms of its first byte"))
            } else if silentNs > 0, now - conn.lastInputNs > silentNs, conn.held.isEmpty,
                      !(hub?.hasWatches(connection: conn.session.connection) ?? false) {
                cutOff(conn, .limit("idle_connection_timeout_ms", max: limits.idleConnectionTimeoutMs,
                                    "no request for more than \(limits.idleConnectionTimeoutMs) ms"))
            }
        }
    }

    /// Answers `error` on a connection and closes it (in strict mode, once the replies
    /// before the error line are fsynced and sent).
    private func cutOff(_ conn: Connection, _ error: WireError) {
        RPC.writeError(id: .null, error, &conn.output)
        conn.output.byte(0x0A)
        conn.closing = true
        updateInterest(conn)
        for case .parked(let call) in conn.held { call.cancel(engine.working) }
        conn.held.removeAll()
        conn.heldBytes = 0
        if let journal, strict {
            release([conn], through: journal.appendedLSN)
        } else {
            flush(conn)
        }
        if connections[conn.fd] != nil && !conn.awaitingSync { closeConnection(conn) }
    }

    private func closeConnection(_ conn: Connection) {
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

    private func updateInterest(_ conn: Connection) {
        let flags = (conn.readPaused || conn.closing ? 0 : evIn) | (conn.wantsWrite ? evOut : 0)
        do throws(SystemError) {
            try register(conn.fd, flags, add: false)
        } catch {
            closeConnection(conn)
        }
    }

    private func register(_ fd: Int32, _ flags: UInt32, add: Bool) throws(SystemError) {
        var ev = epoll_event()
        ev.events = flags
        ev.data.fd = fd
        guard epoll_ctl(epfd, add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &ev) == 0 else {
            throw SystemError("epoll_ctl fd \(fd)")
        }
    }
}

/// Runs `body` on a new POSIX thread.
func spawnThread(_ body: @escaping @Sendable () -> Void) -> pthread_t? {
    final class Box {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
    let box = Unmanaged.passRetained(Box(body)).toOpaque()
    var thread = pthread_t()
    let rc = pthread_create(&thread, nil, { arg in
        guard let arg else { return nil }
        Unmanaged<Box>.fromOpaque(arg).takeRetainedValue().body()
        return nil
    }, box)
    guard rc == 0 else {
        Unmanaged<Box>.fromOpaque(box).release()
        return nil
    }
    return thread
}
