import MnemoCore
import MnemoProtocol

extension Dispatcher {
    static func auditMethods(engine: Engine) -> [(String, Method)] {
        [
            ("audit.query", Method(requiresSession: true, offLoop: true) { p, session, out throws(WireError) in
                try auditQuery(p, session, &out, engine)
            }),
        ]
    }

    private static func auditQuery(_ p: Params, _ session: Session, _ out: inout JSONWriter, _ engine: Engine) throws(WireError) {
        let limits = engine.limits
        try p.allowOnly(["ns", "agent", "since", "limit"])
        var ns: String? = nil
        if p["ns"] != nil { ns = try p.namespace() }
        let agent = try p.optionalString("agent")
        if let agent { try Validate.agent(agent) }
        let a = session.authorization
        // Entries are shown for the namespaces the caller administers; a caller who
        // administers nothing is refused.
        guard a.unrestricted || a.grants.contains(where: { $0.perms.contains(.admin) }) else {
            throw Session.forbidden(.admin, ns ?? "", "audit.query")
        }
        var visible: (@Sendable (String?) -> Bool)?
        if !a.unrestricted { visible = { @Sendable n in a.allows(.admin, n ?? "") } }
        let since = try p.timestamp("since")
        let limit = Int(try p.optionalInt("limit", in: 1...Int64(limits.maxListLimit)) ?? 100)
        let entries = try engine.audit.query(ns: ns, agent: agent, since: since, limit: limit, visible: visible)
        out.raw("{\"entries\":[")
        for (i, e) in entries.enumerated() {
            if i > 0 { out.byte(UInt8(ascii: ",")) }
            e.write(to: &out)
        }
        out.raw("]}")
    }
}

extension AuditEntry {
    /// The `audit_entry` object of the contract.
    func write(to w: inout JSONWriter) {
        func optional(_ s: String?) { if let s { w.string(s) } else { w.raw("null") } }
        w.raw("{\"id\":")
        w.string(String(id))
        w.raw(",\"at\":")
        Timestamp.write(at, to: &w)
        w.raw(",\"principal\":")
        w.string(principal)
        w.raw(",\"agent\":")
        optional(agent)
        w.raw(",\"uid\":")
        w.uint(UInt64(uid))
        w.raw(",\"pid\":")
        w.int(Int64(pid))
        w.raw(",\"method\":")
        w.string(method)
        w.raw(",\"ns\":")
        optional(ns)
        w.raw(",\"target\":")
        optional(target)
        w.raw(",\"allowed\":")
        w.bool(allowed)
        w.raw(",\"error\":")
        optional(error)
        w.raw(",\"rev\":")
        if let rev { w.int(rev) } else { w.raw("null") }
        w.byte(UInt8(ascii: "}"))
    }
}
