#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The contract's default socket path: `$MNEMO_SOCKET`, else
/// `$XDG_RUNTIME_DIR/mnemo/mnemo.sock`, else `./mnemo.sock`.
public enum SocketPath {
    /// The default path from the environment.
    public static func fromEnvironment() -> String {
        if let s = env("MNEMO_SOCKET"), !s.isEmpty { return s }
        if let runtime = env("XDG_RUNTIME_DIR"), !runtime.isEmpty { return runtime + "/mnemo/mnemo.sock" }
        return "./mnemo.sock"
    }

    /// An environment variable.
    public static func env(_ name: String) -> String? {
        guard let p = getenv(name) else { return nil }
        return String(cString: p)
    }
}
