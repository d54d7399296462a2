import MnemoCore

/// Static facts about this server, reported by `session.hello` and `admin.stats`.
public struct ServerInfo: Sendable {
    /// The daemon's version.
    public static let version = "0.1.0"
    /// The wire contract version.
    public static let protocolVersion = 1

    /// The socket path served.
    public var socketPath: String
    /// Limits in force.
    public var limits: Limits

    /// Facts for a server on `socketPath`.
    public init(socketPath: String, limits: Limits) {
        self.socketPath = socketPath
        self.limits = limits
    }
}
