/// Who may connect and what they may do (`[[principals]]` in the configuration).
public struct Principal: Sendable, Equatable {
    /// The name stamped into provenance and the audit log.
    public let name: String
    /// SHA-256 of the token the agent presents in `session.hello`; nil: no token, the
    /// peer's uid alone identifies the principal (then `uids` is required).
    public let tokenSHA256: [UInt8]?
    /// Peer uids (SO_PEERCRED) the principal may connect from; nil: any.
    public let uids: [UInt32]?
    /// What it may do.
    public let grants: [Grant]
    /// Its share of the daemon; nil: only the shared limits.
    public let quota: Quota?

    /// A principal.
    public init(name: String, tokenSHA256: [UInt8]?, uids: [UInt32]?, grants: [Grant], quota: Quota? = nil) {
        self.name = name
        self.tokenSHA256 = tokenSHA256
        self.uids = uids
        self.grants = grants
        self.quota = quota
    }

    /// The single principal of the embedded default (no principals configured): every
    /// peer that can open the 0600 socket, with every right.
    public static let local = Principal(name: "local", tokenSHA256: nil, uids: nil,
                                        grants: [Grant(pattern: "**", perms: [.read, .write, .admin])!])
}
