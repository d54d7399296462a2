import MnemoProtocol

/// The journal's record format: each ``Change`` as one compact JSON object.
enum ChangeCodec {
    static func encode(_ c: Change) -> [UInt8] {
        var w = JSONWriter(capacity: 192)
        write(c, &w)
        return w.bytes
    }

    private static func write(_ c: Change, _ w: inout JSONWriter) {
        switch c {
        case .put(let ns, let key, let item, _):
            w.raw("{\"t\":\"put\",\"ns\":"); w.string(ns)
            w.raw(",\"k\":"); w.string(key)
            w.raw(",\"v\":"); w.raw(item.value)
            w.raw(",\"ver\":"); w.int(item.version)
            w.raw(",\"exp\":"); w.int(item.expiresAt)
            w.raw(",\"p\":"); prov(item.provenance, &w)
            if let lease = item.lease {
                w.raw(",\"l\":{\"r\":"); w.string(lease.resource)
                w.raw(",\"tok\":"); w.int(lease.token); w.raw("}")
            }
            w.raw("}")
        case .remove(let ns, let key, let rev, let expired):
            w.raw("{\"t\":\"rm\",\"ns\":"); w.string(ns)
            w.raw(",\"k\":"); w.string(key)
            w.raw(",\"rev\":"); w.int(rev)
            w.raw(",\"x\":"); w.bool(expired); w.raw("}")
        case .clear(let ns, let rev):
            w.raw("{\"t\":\"clear\",\"ns\":"); w.string(ns)
            w.raw(",\"rev\":"); w.int(rev); w.raw("}")
        case .batch(let rev, let changes):
            w.raw("{\"t\":\"batch\",\"rev\":"); w.int(rev)
            w.raw(",\"c\":[")
            for (i, inner) in changes.enumerated() {
                if i > 0 { w.raw(",") }
                write(inner, &w)
            }
            w.raw("]}")
        case .claim(let ns, let resource, let claim):
            w.raw("{\"t\":\"claim\",\"ns\":"); w.string(ns)
            w.raw(",\"r\":"); w.string(resource)
            w.raw(",\"h\":"); w.string(claim.holder)
            w.raw(",\"pr\":"); w.string(claim.principal)
            w.raw(",\"tok\":"); w.int(claim.token)
            w.raw(",\"exp\":"); w.int(claim.expiresAt)
            if let value = claim.value { w.raw(",\"v\":"); w.raw(value) }
            if claim.since != 0 { w.raw(",\"at\":"); w.int(claim.since) }
            w.raw("}")
        case .renew(let ns, let resource, let token, let expiresAt, _, let rev):
            w.raw("{\"t\":\"renew\",\"ns\":"); w.string(ns)
            w.raw(",\"r\":"); w.string(resource)
            w.raw(",\"tok\":"); w.int(token)
            w.raw(",\"exp\":"); w.int(expiresAt)
            w.raw(",\"rev\":"); w.int(rev); w.raw("}")
        case .unclaim(let ns, let resource, let rev, let at, let expired):
            w.raw("{\"t\":\"unclaim\",\"ns\":"); w.string(ns)
            w.raw(",\"r\":"); w.string(resource)
            w.raw(",\"rev\":"); w.int(rev)
            w.raw(",\"at\":"); w.int(at)
            w.raw(",\"x\":"); w.bool(expired); w.raw("}")
        case .result(let ns, let key, let r):
            w.raw("{\"t\":\"result\",\"ns\":"); w.string(ns)
            w.raw(",\"k\":"); w.string(key)
            w.raw(",\"task\":"); w.string(r.task)
            w.raw(",\"v\":"); w.raw(r.value)
            w.raw(",\"exp\":"); w.int(r.expiresAt)
            w.raw(",\"p\":"); prov(r.provenance, &w); w.raw("}")
        case .forgetResult(let ns, let key, let rev):
            w.raw("{\"t\":\"forget\",\"ns\":"); w.string(ns)
            w.raw(",\"k\":"); w.string(key)
            w.raw(",\"rev\":"); w.int(rev); w.raw("}")
        case .task(let ns, let task, let step):
            w.raw("{\"t\":\"task\",\"ns\":"); w.string(ns)
            w.raw(",\"task\":"); w.string(task)
            w.raw(",\"from\":")
            if let from = step.from { w.string(from.rawValue) } else { w.raw("null") }
            w.raw(",\"to\":"); w.string(step.to.rawValue)
            w.raw(",\"p\":"); prov(step.provenance, &w); w.raw("}")
        case .post(let ns, let e):
            w.raw("{\"t\":\"post\",\"ns\":"); w.string(ns)
            w.raw(",\"id\":"); w.string(e.id)
            w.raw(",\"from\":"); w.string(e.from)
            w.raw(",\"to\":"); w.string(e.to)
            w.raw(",\"type\":"); w.string(e.type)
            w.raw(",\"c\":"); w.raw(e.content)
            w.raw(",\"ack\":"); w.bool(e.acked)
            w.raw(",\"exp\":"); w.int(e.expiresAt)
            w.raw(",\"p\":"); prov(e.provenance, &w); w.raw("}")
        case .ack(let ns, let ids, let rev):
            w.raw("{\"t\":\"ack\",\"ns\":"); w.string(ns)
            w.raw(",\"ids\":"); w.value(.array(ids.map(JSON.string)))
            w.raw(",\"rev\":"); w.int(rev); w.raw("}")
        case .ceiling(let rev):
            w.raw("{\"t\":\"ceiling\",\"rev\":"); w.int(rev); w.raw("}")
        case .dropEntry(let ns, let id, let rev):
            w.raw("{\"t\":\"drop\",\"ns\":"); w.string(ns)
            w.raw(",\"id\":"); w.string(id)
            w.raw(",\"rev\":"); w.int(rev); w.raw("}")
        case .barrier(let ns, let name, let b, let rev, let event):
            w.raw("{\"t\":\"barrier\",\"ns\":"); w.string(ns)
            w.raw(",\"n\":"); w.string(name)
            w.raw(",\"e\":"); w.string(event)
            w.raw(",\"rev\":"); w.int(rev)
            w.raw(",\"b\":"); b.write(&w); w.raw("}")
        case .proposal(let ns, let name, let p, let rev, let event):
            w.raw("{\"t\":\"proposal\",\"ns\":"); w.string(ns)
            w.raw(",\"n\":"); w.string(name)
            w.raw(",\"e\":"); w.string(event)
            w.raw(",\"rev\":"); w.int(rev)
            w.raw(",\"p\":"); p.write(&w); w.raw("}")
        }
    }

    private static func prov(_ p: Provenance, _ w: inout JSONWriter) {
        w.raw("{\"a\":"); w.string(p.agent)
        w.raw(",\"pr\":"); w.string(p.principal)
        w.raw(",\"u\":"); w.uint(UInt64(p.uid))
        w.raw(",\"pid\":"); w.int(Int64(p.pid))
        w.raw(",\"at\":"); w.int(p.at)
        w.raw(",\"rev\":"); w.int(p.rev)
        if let task = p.task { w.raw(",\"task\":"); w.string(task) }
        if let df = p.derivedFrom { w.raw(",\"df\":"); w.value(.array(df.map(JSON.string))) }
        w.raw("}")
    }

    /// A record that does not decode: the journal is damaged beyond a torn tail.
    struct DecodeError: Error, CustomStringConvertible {
        let description: String
    }

    static func decode(_ json: JSON) throws(DecodeError) -> Change {
        let r = Reader(json)
        switch try r.str("t") {
        case "put":
            var lease: Lease? = nil
            if let l = json["l"] { lease = Lease(resource: try Reader(l).str("r"), token: try Reader(l).int("tok")) }
            let item = WorkingItem(value: try r.raw("v"), version: try r.int("ver"), expiresAt: try r.int("exp"),
                                   provenance: try prov(r.sub("p")), lease: lease)
            return .put(ns: try r.str("ns"), key: try r.str("k"), item: item)
        case "rm": return .remove(ns: try r.str("ns"), key: try r.str("k"), rev: try r.int("rev"), expired: try r.bool("x"))
        case "clear": return .clear(ns: try r.str("ns"), rev: try r.int("rev"))
        case "batch":
            var inner: [Change] = []
            for c in json["c"]?.arrayValue ?? [] { inner.append(try decode(c)) }
            return .batch(rev: try r.int("rev"), inner)
        case "claim":
            return .claim(ns: try r.str("ns"), resource: try r.str("r"),
                          Claim(holder: try r.str("h"), principal: try r.str("pr"), token: try r.int("tok"),
                                expiresAt: try r.int("exp"), expiresMono: 0, value: json["v"]?.bytes,
                                since: json["at"]?.int64Value ?? 0))
        case "renew":
            return .renew(ns: try r.str("ns"), resource: try r.str("r"), token: try r.int("tok"), expiresAt: try r.int("exp"),
                          expiresMono: 0, rev: try r.int("rev"))
        case "unclaim":
            return .unclaim(ns: try r.str("ns"), resource: try r.str("r"), rev: try r.int("rev"), at: try r.int("at"),
                            expired: try r.bool("x"))
        case "result":
            return .result(ns: try r.str("ns"), key: try r.str("k"),
                           StoredResult(task: try r.str("task"), value: try r.raw("v"), provenance: try prov(r.sub("p")),
                                        expiresAt: try r.int("exp")))
        case "forget": return .forgetResult(ns: try r.str("ns"), key: try r.str("k"), rev: try r.int("rev"))
        case "task":
            let from = try json["from"]?.stringValue.map { s throws(DecodeError) in try state(s) }
            return .task(ns: try r.str("ns"), task: try r.str("task"),
                         TaskStep(from: from, to: try state(r.str("to")), provenance: try prov(r.sub("p"))))
        case "post":
            return .post(ns: try r.str("ns"), InboxEntry(
                id: try r.str("id"), from: try r.str("from"), to: try r.str("to"), type: try r.str("type"),
                content: try r.raw("c"), provenance: try prov(r.sub("p")), acked: try r.bool("ack"),
                expiresAt: try r.int("exp")))
        case "ack":
            let ids = (json["ids"]?.arrayValue ?? []).compactMap(\.stringValue)
            return .ack(ns: try r.str("ns"), ids: ids, rev: try r.int("rev"))
        case "ceiling": return .ceiling(rev: try r.int("rev"))
        case "drop": return .dropEntry(ns: try r.str("ns"), id: try r.str("id"), rev: try r.int("rev"))
        case "barrier":
            return .barrier(ns: try r.str("ns"), name: try r.str("n"), try Barrier(record: try r.sub("b").json),
                            rev: try r.int("rev"), event: try r.str("e"))
        case "proposal":
            return .proposal(ns: try r.str("ns"), name: try r.str("n"), try Proposal(record: try r.sub("p").json),
                             rev: try r.int("rev"), event: try r.str("e"))
        case let t: throw DecodeError(description: "unknown record type \(t)")
        }
    }

    private static func state(_ s: String) throws(DecodeError) -> TaskState {
        guard let st = TaskState(rawValue: s) else { throw DecodeError(description: "unknown task state \(s)") }
        return st
    }

    private static func prov(_ r: Reader) throws(DecodeError) -> Provenance {
        Provenance(agent: try r.str("a"), principal: try r.str("pr"), uid: UInt32(truncatingIfNeeded: try r.int("u")),
                   pid: Int32(truncatingIfNeeded: try r.int("pid")), at: try r.int("at"), rev: try r.int("rev"),
                   task: r.json["task"]?.stringValue, derivedFrom: r.json["df"]?.arrayValue?.compactMap(\.stringValue))
    }

    struct Reader {
        let json: JSON
        init(_ json: JSON) { self.json = json }
        func str(_ k: String) throws(DecodeError) -> String {
            guard let s = json[k]?.stringValue else { throw DecodeError(description: "record field \(k) missing") }
            return s
        }
        func int(_ k: String) throws(DecodeError) -> Int64 {
            guard let i = json[k]?.int64Value else { throw DecodeError(description: "record field \(k) missing") }
            return i
        }
        func bool(_ k: String) throws(DecodeError) -> Bool {
            guard let b = json[k]?.boolValue else { throw DecodeError(description: "record field \(k) missing") }
            return b
        }
        func raw(_ k: String) throws(DecodeError) -> [UInt8] {
            guard let v = json[k] else { throw DecodeError(description: "record field \(k) missing") }
            return v.bytes
        }
        func sub(_ k: String) throws(DecodeError) -> Reader {
            guard let v = json[k] else { throw DecodeError(description: "record field \(k) missing") }
            return Reader(v)
        }
    }
}

extension Provenance {
    /// A provenance with every field given (used when decoding stored records).
    init(agent: String, principal: String, uid: UInt32, pid: Int32, at: Int64, rev: Int64, task: String?,
         derivedFrom: [String]?) {
        self.init(caller: Caller(agent: agent, principal: principal, uid: uid, gid: 0, pid: pid), at: at, rev: rev,
                  task: task, derivedFrom: derivedFrom)
    }
}
