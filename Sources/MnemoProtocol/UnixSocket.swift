#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Unix-domain stream sockets, the transport of the wire contract.
public enum UnixSocket {
    /// The `sockaddr_un` for `path`, or nil when the path is empty or does not fit
    /// (107 bytes on Linux).
    public static func address(_ path: String) -> sockaddr_un? {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard !bytes.isEmpty, bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { return nil }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return addr
    }

    /// A new, unconnected stream socket (close-on-exec), or -1 with `errno`.
    public static func make() -> Int32 {
        #if canImport(Glibc)
        return socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        #else
        return socket(AF_UNIX, SOCK_STREAM, 0)
        #endif
    }

    /// Connects a blocking socket to `path`.
    /// - Returns: the file descriptor, or an error message naming the path.
    public static func connect(_ path: String) -> Result<Int32, UnixSocketError> {
        guard var addr = address(path) else { return .failure(UnixSocketError(path: path, reason: "path is empty or too long")) }
        let fd = make()
        guard fd >= 0 else { return .failure(UnixSocketError(path: path, reason: String(cString: strerror(errno)))) }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                #if canImport(Glibc)
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                #else
                Darwin.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                #endif
            }
        }
        guard rc == 0 else {
            let e = UnixSocketError(path: path, reason: String(cString: strerror(errno)))
            close(fd)
            return .failure(e)
        }
        return .success(fd)
    }
}

/// A connection that failed: the path and why (`strerror`).
public struct UnixSocketError: Error, CustomStringConvertible, Sendable {
    /// The socket path.
    public let path: String
    /// Why, e.g. `No such file or directory`.
    public let reason: String
    /// `connect PATH: REASON`.
    public var description: String { "connect \(path): \(reason)" }
}
