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

func setNonBlocking(_ fd: Int32) {
    let flags = fcntl(fd, F_GETFL)
    _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
}
