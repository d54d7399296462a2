import MnemoProtocol

/// Who is calling: stamped by the server from the session and the kernel, never taken
/// from request parameters.
public struct Caller: Sendable, Equatable {
    /// The agent name given in `session.hello`.
    public var agent: String
    /// The authenticated principal.
    public var principal: String
    /// Peer credentials read with `SO_PEERCRED` at accept time.
    public var uid: UInt32
    /// Peer group id.
    public var gid: UInt32
    /// Peer process id.
    public var pid: Int32

    /// A caller.
    public init(agent: String, principal: String, uid: UInt32, gid: UInt32, pid: Int32) {
        self.agent = agent
        self.principal = principal
        self.uid = uid
        self.gid = gid
        self.pid = pid
    }
}

/// Where a stored item came from: the server's stamp plus the client's own links.
public struct Provenance: Sendable, Equatable {
    /// Agent name of the writer.
    public var agent: String
    /// Principal of the writer.
    public var principal: String
    /// Writer's uid.
    public var uid: UInt32
    /// Writer's pid.
    public var pid: Int32
    /// Wall time of the write, ms since the epoch.
    public var at: Int64
    /// Revision of the write.
    public var rev: Int64
    /// The task the writer said it worked on.
    public var task: String?
    /// Ids the writer said this was derived from.
    public var derivedFrom: [String]?

    /// The stamp for a write by `caller` at `at` with revision `rev`.
    public init(caller: Caller, at: Int64, rev: Int64, task: String? = nil, derivedFrom: [String]? = nil) {
        agent = caller.agent
        principal = caller.principal
        uid = caller.uid
        pid = caller.pid
        self.at = at
        self.rev = rev
        self.task = task
        self.derivedFrom = derivedFrom
    }
}

extension Provenance {
    /// Writes the provenance object of the wire contract (`common#/$defs/provenance`).
    public func write(to w: inout JSONWriter) {
        w.raw("{\"agent\":")
        w.string(agent)
        w.raw(",\"principal\":")
        w.string(principal)
        w.raw(",\"uid\":")
        w.uint(UInt64(uid))
        w.raw(",\"pid\":")
        w.int(Int64(pid))
        w.raw(",\"at\":")
        Timestamp.write(at, to: &w)
        w.raw(",\"rev\":")
        w.int(rev)
        if let task {
            w.raw(",\"task\":")
            w.string(task)
        }
        if let derivedFrom {
            w.raw(",\"derived_from\":")
            w.value(.array(derivedFrom.map(JSON.string)))
        }
        w.byte(UInt8(ascii: "}"))
    }
}
