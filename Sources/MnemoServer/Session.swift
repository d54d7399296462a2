import MnemoCore

/// One connection's identity: the kernel's peer credentials from accept time, and the
/// caller established by `session.hello`.
struct Session: Sendable {
    /// Read with `SO_PEERCRED` when the connection was accepted.
    let peer: PeerCredentials
    /// Set by `session.hello`; nil before it.
    var caller: Caller?

    init(peer: PeerCredentials) { self.peer = peer }
}
