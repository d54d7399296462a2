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

/// One epoll event loop on its own thread, serving the connections it accepted.
///
/// Requests are decoded, executed and answered on this thread, in order, with no hop to
/// another thread: the stores are guarded by short locks, which costs far less than a
/// cross-core wake-up. Replies to all the lines read in one go are written with one
/// `send`.
final class EventLoop: @unchecked Sendable {
    // @unchecked: every mutable field below is touched only by the loop's own thread;
    // other threads call only `stop()`, which uses an atomic and the eventfd.
    let index: Int
    private let epfd: Int32
    private let wakeFD: Int32
    private let listener: UnixListener
    private let dispatcher: Dispatcher
    private let limits: Limits
    private let lineLimits: (before: Int, after: Int)
    private let status: ServerStatus
    private let logger: Logger
    private let stopRequested = Atomic<Bool>(false)
    private var connections: [Int32: Connection] = [:]
    private var readBuffer = [UInt8](repeating: 0, count: 64 << 10)
    private var lastIdleCheckNs: UInt64 = 0
    private var thread: pthread_t?

    init(index: Int, listener: UnixListener, dispatcher: Dispatcher, status: ServerStatus, logger: Logger) throws(SystemError) {
        self.index = index
        self.listener = listener
        self.dispatcher = dispatcher
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
        var one: UInt64 = 1
        _ = write(wakeFD, &one, 8)
    }

    func join() {
        if let thread { pthread_join(thread, nil) }
    }

    // MARK: the loop

    private func run() {
        var events = [epoll_event](repeating: epoll_event(), count: 256)
        while !stopRequested.load(ordering: .acquiring) {
            let n = epoll_wait(epfd, &events, Int32(events.count), 250)
            if n < 0 {
                if errno == EINTR { continue }
                logger.error("epoll_wait failed", metadata: ["errno": "\(errno)"])
                break
            }
            for i in 0..<Int(n) {
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
                }
            }
            checkIdle()
        }
        for conn in connections.values {
            flush(conn)
            closeConnection(conn)
        }
        Glibc.close(wakeFD)
        Glibc.close(epfd)
    }

    private func acceptConnections() {
        for _ in 0..<64 {
            let fd = mnemo_accept(listener.fd)
            if fd < 0 {
                if errno == EINTR { continue }
                if errno != EAGAIN && errno != EWOULDBLOCK {
                    logger.warning("accept failed", metadata: ["errno": "\(errno)"])
                }
                return
            }
            if status.connectionsCurrent.load(ordering: .relaxed) >= limits.maxConnections {
                status.connectionsRefused.add(1, ordering: .relaxed)
                var w = JSONWriter()
                RPC.writeError(id: .null, .limit("max_connections", max: limits.maxConnections,
                                                 "too many connections (\(limits.maxConnections))"), &w)
                w.byte(0x0A)
                _ = w.bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                close(fd)
                continue
            }
            guard let peer = PeerCredentials.read(fd: fd) else {
                logger.warning("SO_PEERCRED failed; closing connection", metadata: ["errno": "\(errno)"])
                close(fd)
                continue
            }
            let conn = Connection(fd: fd, peer: peer)
            do throws(SystemError) {
                try register(fd, evIn, add: true)
            } catch {
                logger.warning("cannot watch connection", metadata: ["error": "\(error)"])
                close(fd)
                continue
            }
            connections[fd] = conn
            status.connectionsCurrent.add(1, ordering: .relaxed)
            status.connectionsTotal.add(1, ordering: .relaxed)
        }
    }

    private func readable(_ conn: Connection) {
        guard !conn.readPaused, !conn.closing else { return }
        let n = readBuffer.withUnsafeMutableBytes { read(conn.fd, $0.baseAddress, $0.count) }
        if n > 0 {
            readBuffer.withUnsafeBytes { conn.input.append(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            processLines(conn)
        } else if n == 0 {
            // The peer finished sending: answer what it sent, then close.
            conn.closing = true
            processLines(conn)
        } else if errno == EAGAIN || errno == EINTR {
            return
        } else {
            closeConnection(conn)
            return
        }
        flush(conn)
    }

    /// Executes every complete line buffered on `conn`, appending the replies.
    private func processLines(_ conn: Connection) {
        while conn.pendingOutput < limits.maxPendingOutputBytes,
            let line = conn.input.next(maxLine: conn.maxLine(lineLimits))
        {
            switch line {
            case .tooLong:
                let max = conn.maxLine(lineLimits)
                RPC.writeError(id: .null, .limit(conn.session.caller == nil ? "max_line_bytes_before_hello" : "max_line_bytes",
                                                 max: max, "request line longer than \(max) bytes"), &conn.output)
                conn.output.byte(0x0A)
            case .line(let range):
                if range.isEmpty { continue }
                handleLine(conn, range)
            }
        }
        conn.input.compact()
        if conn.input.hasPartialLine {
            if conn.partialSinceNs == 0 { conn.partialSinceNs = dispatcher.engine.time.monotonicNs() }
        } else {
            conn.partialSinceNs = 0
        }
        if conn.pendingOutput >= limits.maxPendingOutputBytes && !conn.readPaused {
            conn.readPaused = true
            updateInterest(conn)
        }
    }

    private func handleLine(_ conn: Connection, _ range: Range<Int>) {
        let decoded = conn.input.storage.withUnsafeBufferPointer { buf in
            RPC.decode(line: UnsafeBufferPointer(rebasing: buf[range]), maxDepth: limits.maxDepth, maxBatch: limits.maxBatch)
        }
        let mark = conn.output.bytes.count
        switch decoded {
        case .failure(let error):
            RPC.writeError(id: .null, error, &conn.output)
        case .single(let item):
            execute(item, conn)
        case .batch(let items):
            conn.output.byte(UInt8(ascii: "["))
            var wrote = false
            for item in items {
                let before = conn.output.bytes.count
                if wrote { conn.output.byte(UInt8(ascii: ",")) }
                let afterComma = conn.output.bytes.count
                execute(item, conn)
                if conn.output.bytes.count == afterComma {
                    conn.output.bytes.removeSubrange(before...)  // a notification: no reply
                } else {
                    wrote = true
                }
            }
            if !wrote {
                conn.output.bytes.removeSubrange(mark...)
                return
            }
            conn.output.byte(UInt8(ascii: "]"))
        }
        if conn.output.bytes.count > mark { conn.output.byte(0x0A) }
    }

    private func execute(_ item: RPCItem, _ conn: Connection) {
        switch item {
        case .invalid(let id, let error):
            RPC.writeError(id: id, error, &conn.output)
        case .request(let request):
            dispatcher.execute(request, session: &conn.session, out: &conn.output, shard: index)
        }
    }

    private func flush(_ conn: Connection) {
        while conn.sent < conn.output.bytes.count {
            let n = conn.output.bytes.withUnsafeBytes { buf in
                send(conn.fd, buf.baseAddress! + conn.sent, buf.count - conn.sent, Int32(MSG_NOSIGNAL))
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
        conn.output.bytes.removeAll(keepingCapacity: conn.output.bytes.capacity <= 1 << 20)
        conn.sent = 0
        if conn.closing {
            closeConnection(conn)
            return
        }
        let resume = conn.readPaused
        if conn.wantsWrite || resume {
            conn.wantsWrite = false
            conn.readPaused = false
            updateInterest(conn)
        }
        if resume {
            // Lines read before the pause are still buffered.
            processLines(conn)
            if conn.pendingOutput > 0 { flush(conn) }
        }
    }

    /// Closes connections whose partial line has been idle past the limit.
    private func checkIdle() {
        let now = dispatcher.engine.time.monotonicNs()
        guard now - lastIdleCheckNs >= 250_000_000 else { return }
        lastIdleCheckNs = now
        let timeoutNs = UInt64(limits.idleTimeoutMs) * 1_000_000
        for conn in connections.values where conn.partialSinceNs != 0 && now - conn.partialSinceNs > timeoutNs {
            RPC.writeError(id: .null, .limit("idle_timeout_ms", max: limits.idleTimeoutMs,
                                             "partial request line idle for more than \(limits.idleTimeoutMs) ms"),
                           &conn.output)
            conn.output.byte(0x0A)
            conn.closing = true
            flush(conn)
            if connections[conn.fd] != nil { closeConnection(conn) }
        }
    }

    private func closeConnection(_ conn: Connection) {
        guard connections.removeValue(forKey: conn.fd) != nil else { return }
        _ = epoll_ctl(epfd, EPOLL_CTL_DEL, conn.fd, nil)
        close(conn.fd)
        status.connectionsCurrent.subtract(1, ordering: .relaxed)
    }

    private func updateInterest(_ conn: Connection) {
        let flags = (conn.readPaused ? 0 : evIn) | (conn.wantsWrite ? evOut : 0)
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
