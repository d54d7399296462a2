import MnemoCore
import MnemoProtocol

extension Dispatcher {
    static func workingMethods(engine: Engine) -> [(String, Method)] {
        let wm = engine.working
        let limits = engine.limits
        return [
            ("wm.set", Method(requiresSession: true) { p, session, out throws(WireError) in
                try p.allowOnly(["ns", "key", "value", "ttl_ms", "if_version", "if_absent", "lease", "fence",
                                 "task", "derived_from"])
                let links = try p.links()
                let write = WorkingMemory.Write(
                    ns: try p.namespace(), key: try p.string("key"), value: try p.any("value").bytes,
                    ttlMs: try p.optionalInt("ttl_ms", in: 1...limits.maxTTLms),
                    ifVersion: try p.optionalInt("if_version", in: 1...Int64.max),
                    ifAbsent: try p.optionalBool("if_absent") ?? false,
                    lease: try p.claimRef("lease"), fence: try p.claimRef("fence"),
                    task: links.task, derivedFrom: links.derivedFrom)
                let r = try wm.set(write, by: session.callerOrThrow())
                out.raw("{\"version\":")
                out.int(r.version)
                out.raw(",\"rev\":")
                out.int(r.rev)
                out.expiresAt(r.expiresAt)
                out.byte(UInt8(ascii: "}"))
            }),
            ("wm.get", Method(requiresSession: true) { p, _, out throws(WireError) in
                try p.allowOnly(["ns", "key"])
                guard let item = wm.get(ns: try p.namespace(), key: try p.string("key")) else {
                    out.raw("{\"found\":false}")
                    return
                }
                out.raw("{\"found\":true,\"value\":")
                out.raw(item.value)
                out.raw(",\"version\":")
                out.int(item.version)
                out.expiresAt(item.expiresAt == 0 ? nil : item.expiresAt)
                out.raw(",\"provenance\":")
                item.provenance.write(to: &out)
                out.byte(UInt8(ascii: "}"))
            }),
            ("wm.del", Method(requiresSession: true) { p, session, out throws(WireError) in
                try p.allowOnly(["ns", "key", "if_version", "fence"])
                let rev = try wm.delete(ns: try p.namespace(), key: try p.string("key"),
                                        ifVersion: try p.optionalInt("if_version", in: 1...Int64.max),
                                        fence: try p.claimRef("fence"), by: session.callerOrThrow())
                if let rev {
                    out.raw("{\"deleted\":true,\"rev\":")
                    out.int(rev)
                    out.byte(UInt8(ascii: "}"))
                } else {
                    out.raw("{\"deleted\":false}")
                }
            }),
            ("wm.list", Method(requiresSession: true) { p, _, out throws(WireError) in
                try p.allowOnly(["ns", "prefix", "limit", "cursor"])
                let page = wm.list(ns: try p.namespace(), prefix: try p.optionalString("prefix"),
                                   limit: Int(try p.optionalInt("limit", in: 1...Int64(limits.maxListLimit)) ?? 100),
                                   cursor: try p.optionalString("cursor"))
                out.raw("{\"items\":[")
                for (i, item) in page.items.enumerated() {
                    if i > 0 { out.byte(UInt8(ascii: ",")) }
                    out.raw("{\"key\":")
                    out.string(item.key)
                    out.raw(",\"version\":")
                    out.int(item.version)
                    out.expiresAt(item.expiresAt)
                    out.byte(UInt8(ascii: "}"))
                }
                out.byte(UInt8(ascii: "]"))
                if let cursor = page.cursor {
                    out.raw(",\"cursor\":")
                    out.string(cursor)
                }
                out.byte(UInt8(ascii: "}"))
            }),
            ("wm.expire", Method(requiresSession: true) { p, session, out throws(WireError) in
                try p.allowOnly(["ns", "key", "ttl_ms"])
                guard p.has("ttl_ms") else { throw .invalidParams("ttl_ms", "required (null removes the TTL)") }
                let r = try wm.expire(ns: try p.namespace(), key: try p.string("key"),
                                      ttlMs: try p.optionalInt("ttl_ms", in: 1...limits.maxTTLms),
                                      by: session.callerOrThrow())
                guard let r else {
                    out.raw("{\"found\":false}")
                    return
                }
                out.raw("{\"found\":true,\"version\":")
                out.int(r.version)
                out.raw(",\"rev\":")
                out.int(r.rev)
                out.expiresAt(r.expiresAt)
                out.byte(UInt8(ascii: "}"))
            }),
            ("wm.clear", Method(requiresSession: true) { p, session, out throws(WireError) in
                try p.allowOnly(["ns"])
                let r = try wm.clear(ns: try p.namespace(), by: try session.callerOrThrow())
                out.raw("{\"deleted\":")
                out.int(r.deleted)
                if let rev = r.rev {
                    out.raw(",\"rev\":")
                    out.int(rev)
                }
                out.byte(UInt8(ascii: "}"))
            }),
            ("wm.txn", Method(requiresSession: true) { p, session, out throws(WireError) in
                try p.allowOnly(["compare", "ops"])
                let compares = try (p.optionalArray("compare") ?? []).enumerated().map { i, c throws(WireError) in
                    try parseCompare(c, field: "compare[\(i)]")
                }
                guard let rawOps = try p.optionalArray("ops"), !rawOps.isEmpty else {
                    throw .invalidParams("ops", "required: at least one op")
                }
                let ops = try rawOps.enumerated().map { i, o throws(WireError) in
                    try parseOp(o, field: "ops[\(i)]", maxTTL: limits.maxTTLms)
                }
                for c in compares {
                    switch c {
                    case .version(let ns, _, _), .absent(let ns, _): try session.require(.read, ns, "wm.txn")
                    }
                }
                for o in ops {
                    switch o {
                    case .set(let ns, _, _, _), .del(let ns, _): try session.require(.write, ns, "wm.txn")
                    }
                }
                let r = try wm.txn(compare: compares, ops: ops, by: session.callerOrThrow())
                out.raw("{\"rev\":")
                out.int(r.rev)
                out.raw(",\"results\":[")
                for (i, result) in r.results.enumerated() {
                    if i > 0 { out.byte(UInt8(ascii: ",")) }
                    switch result {
                    case .set(let version, let expiresAt):
                        out.raw("{\"version\":")
                        out.int(version)
                        out.expiresAt(expiresAt)
                        out.byte(UInt8(ascii: "}"))
                    case .del(let deleted):
                        out.raw(deleted ? "{\"deleted\":true}" : "{\"deleted\":false}")
                    }
                }
                out.raw("]}")
            }),
        ]
    }
}

private func parseCompare(_ json: JSON, field: String) throws(WireError) -> WorkingMemory.Compare {
    guard let members = json.objectValue else { throw .invalidParams(field, "must be an object") }
    let c = Params(members, path: field)
    try c.allowOnly(["ns", "key", "version", "absent"])
    let ns = try c.namespace()
    let key = try c.string("key")
    let version = try c.optionalInt("version", in: 1...Int64.max)
    let absent = try c.optionalBool("absent")
    switch (version, absent) {
    case (let v?, nil): return .version(ns: ns, key: key, v)
    case (nil, true?): return .absent(ns: ns, key: key)
    default: throw .invalidParams(field, "needs exactly one of version or absent: true")
    }
}

private func parseOp(_ json: JSON, field: String, maxTTL: Int64) throws(WireError) -> WorkingMemory.Op {
    guard let members = json.objectValue else { throw .invalidParams(field, "must be an object") }
    let o = Params(members, path: field)
    switch try o.string("op") {
    case "set":
        try o.allowOnly(["op", "ns", "key", "value", "ttl_ms"])
        return .set(ns: try o.namespace(), key: try o.string("key"), value: try o.any("value").bytes,
                    ttlMs: try o.optionalInt("ttl_ms", in: 1...maxTTL))
    case "del":
        try o.allowOnly(["op", "ns", "key"])
        return .del(ns: try o.namespace(), key: try o.string("key"))
    default:
        throw .invalidParams(o.name("op"), "must be \"set\" or \"del\"")
    }
}

extension Params {
    /// An optional `{resource, token}` naming a claim (for `lease` and `fence`).
    func claimRef(_ key: String) throws(WireError) -> Lease? {
        guard let o = try optionalObject(key) else { return nil }
        try o.allowOnly(["resource", "token"])
        let resource = try o.string("resource")
        try Validate.identifier(resource, field: o.name("resource"))
        return Lease(resource: resource, token: try o.int("token", in: 1...Int64.max))
    }
}

extension Session {
    /// The caller; the dispatcher guarantees it exists for methods that need a session.
    func callerOrThrow() throws(WireError) -> Caller {
        guard let caller else { throw .app(.unauthenticated, "call session.hello first") }
        return caller
    }
}
