import CMnemoSys
#if canImport(Glibc)
import Glibc
#endif
import Logging
import MnemoCore
import MnemoProtocol
import Synchronization

private let connectionIDs = Atomic<UInt64>(1)
/// Round-robin position for handing accepted connections to the loops.
private let nextLoop = Atomic<Int>(0)

/// Accepting connections: the accept policy (descriptors, `max_connections`), and spreading
/// accepted connections over the loops.
extension EventLoop {
    func acceptConnections() {
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
    func refuse(_ fd: Int32, _ reason: String) {
        status.connectionsRefused.add(1, ordering: .relaxed)
        var w = JSONWriter()
        RPC.writeError(id: .null, .limit("max_connections", max: limits.maxConnections, reason), &w)
        w.byte(0x0A)
        _ = w.bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        Glibc.close(fd)
    }

    /// Logs an accept failure at most once a second.
    func warnAcceptFailure(_ error: Int32) {
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
    func adopt(_ fd: Int32, _ peer: PeerCredentials) {
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
}
