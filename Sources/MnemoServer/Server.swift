#if canImport(Glibc)
import Glibc
#endif
import Logging
import MnemoCore
import MnemoProtocol
import Synchronization

/// The socket server: a listener and one event loop per core.
public final class Server: Sendable {
    /// Facts reported to clients.
    public let info: ServerInfo
    private let listener: UnixListener
    private let loops: [EventLoop]
    private let status = ServerStatus()
    private let logger: Logger

    /// Binds the socket (or takes over `inheritedFD`, a listening socket passed by systemd)
    /// and prepares `threads` event loops (nothing runs until ``start()``).
    /// - Throws: when the socket cannot be bound (path in use by a live daemon, not a
    ///   socket, permissions) or the inherited descriptor is not a listening Unix socket.
    public init(socketPath: String, inheritedFD: Int32? = nil, groupAccess: Bool = false, threads: Int,
                engine: Engine, logger: Logger) throws(SystemError) {
        self.logger = logger
        if let inheritedFD {
            listener = try UnixListener(inherited: inheritedFD)
        } else {
            listener = try UnixListener(path: socketPath, groupAccess: groupAccess)
        }
        info = ServerInfo(socketPath: listener.path, limits: engine.limits)
        let registry = Mutex<[EventLoop]>([])
        let hub = WatchHub(capacity: engine.limits.watchHistory, currentRev: engine.revision) { ref, bytes in
            registry.withLock { $0 }[ref.loop].post(ref.id, bytes)
        }
        let dispatcher = Dispatcher(engine: engine, shards: threads, status: status, info: info, hub: hub)
        var loops: [EventLoop] = []
        do throws(SystemError) {
            for i in 0..<max(1, threads) {
                let loop = try EventLoop(index: i, listener: listener, dispatcher: dispatcher, status: status, logger: logger)
                loop.hub = hub
                loops.append(loop)
            }
        } catch {
            listener.close()
            throw error
        }
        registry.withLock { $0 = loops }
        for loop in loops { loop.loops = loops }
        engine.working.observe { events in hub.publish(events) }
        engine.episodic.observe { events in hub.publish(events) }
        engine.semantic.observe { events in hub.publish(events) }
        self.loops = loops
    }

    /// Starts serving, then tells a service manager (systemd) that mnemod is ready: the
    /// stores were loaded before the server was made, so a client let in now finds them.
    public func start() {
        for loop in loops { loop.start() }
        logger.info("listening", metadata: ["socket": "\(info.socketPath)", "threads": "\(loops.count)",
                                            "activation": "\(listener.ownsFile ? "bound" : "systemd")"])
        Systemd.notify("READY=1\nSTATUS=serving \(info.socketPath)\nMAINPID=\(getpid())")
    }

    /// Stops accepting, answers what was already read, flushes and closes every
    /// connection, and removes the socket file.
    public func shutdown() {
        Systemd.notify("STOPPING=1")
        status.shuttingDown.store(true, ordering: .relaxed)
        for loop in loops { loop.stop() }
        for loop in loops { loop.join() }
        listener.close()
        logger.info("stopped", metadata: ["socket": "\(info.socketPath)"])
    }
}
