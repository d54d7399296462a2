import CMnemoSys
import MnemoProtocol
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The listening Unix socket: created with mode 0600 (0660 with a group), replacing a
/// stale socket file left by a dead daemon and refusing to start beside a live one.
final class UnixListener: Sendable {
    let fd: Int32
    let path: String
    /// Whether mnemod created the socket file (and so removes it on close). A socket handed
    /// over by systemd belongs to systemd.
    let ownsFile: Bool
    /// A descriptor kept in reserve (-1: none): when `accept` fails for lack of descriptors,
    /// it is released to accept the peer, tell it why and close it. Its lock also serializes
    /// `accept` across the event loops: otherwise another loop's `accept` could take the
    /// descriptor released for a moment, both loops could end with no spare, and peers
    /// would wait unanswered until a descriptor freed up.
    private let spare = Mutex<Int32>(UnixListener.openSpare())

    /// What one ``accept(refusing:)`` gave.
    enum Accepted {
        /// A new connection.
        case peer(Int32)
        /// Nothing pending.
        case none
        /// Out of descriptors (`errno`): a pending peer, if any, was refused with the spare.
        case refused(Int32)
        /// Out of descriptors (`errno`) and none to spare: stop watching for a moment.
        case outOfDescriptors(Int32)
        /// Another error (`errno`).
        case failed(Int32)
    }

    /// Binds and listens on `path`.
    /// - Throws: when a live daemon answers on `path`, when `path` is not a socket, or on
    ///   any system error (with the path in the message).
    init(path: String, groupAccess: Bool, backlog: Int32 = 1024) throws(SystemError) {
        self.path = path
        ownsFile = true
        try UnixListener.prepareDirectory(for: path)
        try UnixListener.removeStale(path)
        guard var addr = UnixSocket.address(path) else {
            throw SystemError(message: "socket path is empty or too long (max 107 bytes): \(path)")
        }
        let fd = UnixSocket.make()
        guard fd >= 0 else { throw SystemError("socket") }
        // bind() creates the file with the umask's mode: narrow the umask so that there is
        // no moment at which another user could connect, then set the final mode.
        let mode: mode_t = groupAccess ? 0o660 : 0o600
        let oldMask = umask(0o777 & ~mode)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        umask(oldMask)
        guard rc == 0 else {
            let e = SystemError("bind \(path)")
            _ = Glibc.close(fd)
            throw e
        }
        chmod(path, mode)
        guard listen(fd, backlog) == 0 else {
            let e = SystemError("listen \(path)")
            _ = Glibc.close(fd)
            unlink(path)
            throw e
        }
        setNonBlocking(fd)
        self.fd = fd
    }

    /// Takes over a listening socket created by the service manager (socket activation).
    /// - Throws: when `fd` is not a listening Unix stream socket.
    init(inherited fd: Int32) throws(SystemError) {
        var buf = [UInt8](repeating: 0, count: 110)
        let rc = buf.withUnsafeMutableBufferPointer { b in
            b.withMemoryRebound(to: CChar.self) { mnemo_unix_listener_path(fd, $0.baseAddress, Int32($0.count)) }
        }
        guard rc == 0 else {
            throw SystemError("descriptor \(fd) passed by socket activation is not a listening Unix stream socket")
        }
        path = String(decoding: buf.prefix { $0 != 0 }, as: UTF8.self)
        ownsFile = false
        setNonBlocking(fd)
        self.fd = fd
    }

    /// Accepts one pending peer (any event loop; one at a time). When the process is out of
    /// descriptors, the spare one is released, a pending peer is accepted into it and handed
    /// to `refuse` (which answers and closes it), and the spare is taken back, all under the
    /// lock.
    func accept(refusing refuse: (Int32) -> Void) -> Accepted {
        spare.withLock { spare in
            while true {
                let fd = mnemo_accept(self.fd)
                if fd >= 0 { return .peer(fd) }
                let error = errno
                switch error {
                case EINTR:
                    continue
                case EAGAIN, EWOULDBLOCK:
                    return .none
                case EMFILE, ENFILE:
                    if spare < 0 { spare = UnixListener.openSpare() }
                    guard spare >= 0 else { return .outOfDescriptors(error) }
                    _ = Glibc.close(spare)
                    let peer = mnemo_accept(self.fd)
                    if peer >= 0 { refuse(peer) }
                    spare = UnixListener.openSpare()
                    return .refused(error)
                default:
                    return .failed(error)
                }
            }
        }
    }

    private static func openSpare() -> Int32 {
        Glibc.open("/dev/null", O_RDONLY | O_CLOEXEC)
    }

    /// Closes the socket and removes its file (if mnemod created it).
    func close() {
        _ = Glibc.close(fd)
        spare.withLock { spare in
            if spare >= 0 { _ = Glibc.close(spare) }
            spare = -1
        }
        if ownsFile { unlink(path) }
    }

    private static func prepareDirectory(for path: String) throws(SystemError) {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return }
        let dir = String(path[..<slash])
        var st = stat()
        if stat(dir, &st) == 0 { return }
        // The default $XDG_RUNTIME_DIR/mnemo is made private to the user.
        guard mkdir(dir, 0o700) == 0 || errno == EEXIST else { throw SystemError("mkdir \(dir)") }
    }

    private static func removeStale(_ path: String) throws(SystemError) {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        guard (st.st_mode & S_IFMT) == S_IFSOCK else {
            throw SystemError(message: "\(path) exists and is not a socket; refusing to replace it")
        }
        switch UnixSocket.connect(path) {
        case .success(let fd):
            _ = Glibc.close(fd)
            throw SystemError(message: "another mnemod is already serving \(path); stop it first or choose another --socket")
        case .failure:
            // Nobody answers: a stale file from a daemon that died without cleaning up.
            unlink(path)
        }
    }
}
