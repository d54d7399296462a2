import CMnemoSys
#if canImport(Glibc)
import Glibc
#endif

/// The peer's identity as the kernel reports it (`SO_PEERCRED`, read through the C shim
/// because Glibc's module does not export `struct ucred`).
public struct PeerCredentials: Sendable, Equatable {
    /// Process id of the peer when it connected.
    public var pid: Int32
    /// User id.
    public var uid: UInt32
    /// Group id.
    public var gid: UInt32

    /// Reads the credentials of the peer of a connected Unix socket.
    static func read(fd: Int32) -> PeerCredentials? {
        var cred = PeerCredentials(pid: 0, uid: 0, gid: 0)
        return mnemo_peercred(fd, &cred.pid, &cred.uid, &cred.gid) == 0 ? cred : nil
    }
}

/// A system call failure with the call's name, the path or fd involved and `strerror`.
public struct SystemError: Error, CustomStringConvertible, Sendable {
    /// What failed.
    public let description: String

    init(_ what: String, errno code: Int32 = errno) {
        description = "\(what): \(String(cString: strerror(code)))"
    }

    init(message: String) { description = message }
}

/// `sockaddr_un` for a path, or nil when the path does not fit.
func unixAddress(_ path: String) -> sockaddr_un? {
    var addr = sockaddr_un()
    addr.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    let capacity = MemoryLayout.size(ofValue: addr.sun_path)
    guard !bytes.isEmpty, bytes.count < capacity else { return nil }
    withUnsafeMutableBytes(of: &addr.sun_path) { raw in
        raw.copyBytes(from: bytes)
        raw[bytes.count] = 0
    }
    return addr
}

/// Connects a blocking Unix stream socket to `path`; returns the fd or the errno.
func connectUnix(_ path: String) -> Result<Int32, SystemError> {
    guard var addr = unixAddress(path) else { return .failure(SystemError(message: "socket path too long: \(path)")) }
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { return .failure(SystemError("socket")) }
    let rc = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    if rc != 0 {
        let e = SystemError("connect \(path)")
        close(fd)
        return .failure(e)
    }
    return .success(fd)
}

func setNonBlocking(_ fd: Int32) {
    let flags = fcntl(fd, F_GETFL)
    _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
}
