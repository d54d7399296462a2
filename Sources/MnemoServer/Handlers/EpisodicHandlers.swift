import MnemoCore
import MnemoProtocol

extension Dispatcher {
    /// The episodic methods; all run off the event loop (SQLite).
    static func episodicMethods(engine: Engine) -> [(String, Method)] {
        let ep = engine.episodic
        let limits = engine.limits
        return [
            ("ep.append", Method(requiresSession: true, offLoop: true) { p, session, out throws(WireError) in
                try p.allowOnly(["ns", "kind", "content", "data", "task", "tags", "idempotency_key", "derived_from", "embed"])
                let links = try p.links()
                let data = p["data"].map(\.bytes)
                let key = try p.optionalString("idempotency_key")
                let a = EpisodeStore.Append(ns: try p.namespace(), kind: try p.string("kind"), content: try p.string("content"),
                                            data: data, task: links.task, tags: try p.stringList("tags") ?? [],
                                            idempotencyKey: key, derivedFrom: links.derivedFrom,
                                            embed: try p.optionalBool("embed") ?? false)
                let r = try ep.append(a, by: session.callerOrThrow())
                out.raw("{\"id\":")
                out.string(r.id)
                out.raw(",\"rev\":")
                out.int(r.rev)
                out.raw(",\"at\":")
                Timestamp.write(r.at, to: &out)
                if r.embedded { out.raw(",\"embedded\":true") }
                if r.truncated { out.raw(",\"truncated\":true") }
                out.byte(UInt8(ascii: "}"))
            }),
            ("ep.query", Method(requiresSession: true, offLoop: true) { p, session, out throws(WireError) in
                try p.allowOnly(["ns", "since", "until", "kind", "agent", "task", "tags", "limit", "cursor", "order"])
                let descending: Bool
                switch try p.optionalString("order") {
                case nil, "asc"?: descending = false
                case "desc"?: descending = true
                default: throw .invalidParams("order", "must be \"asc\" or \"desc\"")
                }
                let kind = try p.optionalString("kind")
                if let kind { try Validate.agent(kind, field: "kind") }
                let agent = try p.optionalString("agent")
                if let agent { try Validate.agent(agent) }
                let task = try p.optionalString("task")
                if let task { try Validate.identifier(task, field: "task") }
                let q = EpisodeQuery(
                    ns: try p.namespace(), since: try p.timestamp("since"), until: try p.timestamp("until"), kind: kind,
                    agent: agent, task: task, tags: try p.stringList("tags") ?? [],
                    limit: Int(try p.optionalInt("limit", in: 1...Int64(limits.maxListLimit)) ?? 100),
                    descending: descending, cursor: try p.optionalString("cursor").map { s throws(WireError) in try EpisodeCursor(decoding: s) })
                let page = try ep.query(q, visible: session.readable)
                out.raw("{\"records\":[")
                for (i, r) in page.records.enumerated() {
                    if i > 0 { out.byte(UInt8(ascii: ",")) }
                    r.write(to: &out)
                }
                out.byte(UInt8(ascii: "]"))
                if let cursor = page.cursor {
                    out.raw(",\"cursor\":")
                    out.string(cursor.encoded)
                }
                out.byte(UInt8(ascii: "}"))
            }),
            ("ep.search", Method(requiresSession: true, offLoop: true) { p, session, out throws(WireError) in
                try p.allowOnly(["ns", "text", "limit", "mode", "fusion"])
                let r = try ep.search(ns: try p.namespace(), text: try p.string("text"),
                                      limit: Int(try p.optionalInt("limit", in: 1...Int64(limits.maxListLimit)) ?? 10),
                                      mode: try SearchMode.parse(p.optionalString("mode"), fallback: ep.settings.searchMode),
                                      fusion: try RankFusion.Method.parse(p.optionalString("fusion")),
                                      visible: session.readable)
                out.raw("{\"hits\":[")
                for (i, h) in r.hits.enumerated() {
                    if i > 0 { out.byte(UInt8(ascii: ",")) }
                    h.record.write(to: &out, score: h.score, match: h.match)
                }
                out.byte(UInt8(ascii: "]"))
                if !r.skipped.isEmpty {
                    out.raw(",\"skipped\":")
                    out.value(.array(r.skipped.map(JSON.string)))
                }
                out.byte(UInt8(ascii: "}"))
            }),
            ("ep.summarize", Method(requiresSession: true, offLoop: true) { p, session, out throws(WireError) in
                try p.allowOnly(["ns", "older_than_ms", "max_records"])
                let r = try ep.summarize(ns: try p.namespace(), olderThanMs: try p.optionalInt("older_than_ms", in: 1...Int64.max),
                                         maxRecords: Int(try p.optionalInt("max_records", in: 1...Int64(Limits.maxSummarizeRecords)) ?? 1000),
                                         by: session.callerOrThrow())
                out.raw("{\"summaries\":[")
                for (i, s) in r.summaries.enumerated() {
                    if i > 0 { out.byte(UInt8(ascii: ",")) }
                    s.write(to: &out)
                }
                out.raw("],\"summarized\":")
                out.int(r.summarized)
                out.byte(UInt8(ascii: "}"))
            }),
            ("ep.prune", Method(requiresSession: true, offLoop: true) { p, session, out throws(WireError) in
                try p.allowOnly(["ns", "policy", "dry_run"])
                guard let policyParams = try p.optionalObject("policy") else { throw .invalidParams("policy", "required") }
                try policyParams.allowOnly(["max_age_ms", "max_count", "keep_summaries"])
                var ns: String? = nil
                if p["ns"] != nil { ns = try p.namespace() }
                try session.require(.admin, ns ?? "", "ep.prune")
                let policy = RetentionPolicy(
                    ns: ns, maxAgeMs: try policyParams.optionalInt("max_age_ms", in: 1...Int64.max),
                    maxCount: try policyParams.optionalInt("max_count", in: 0...Int64(Int32.max)).map { Int($0) },
                    keepSummaries: try policyParams.optionalBool("keep_summaries") ?? true)
                let caller = try session.callerOrThrow()
                let r = try ep.prune(policy, dryRun: try p.optionalBool("dry_run") ?? false,
                                     requestedBy: "ep.prune by \(caller.agent) (uid \(caller.uid), pid \(caller.pid))")
                out.raw("{\"deleted\":")
                out.int(r.deleted)
                out.raw(",\"kept\":")
                out.int(r.kept)
                if let rev = r.rev {
                    out.raw(",\"rev\":")
                    out.int(rev)
                }
                out.byte(UInt8(ascii: "}"))
            }),
            ("ep.pin", Method(requiresSession: true, offLoop: true) { p, session, out throws(WireError) in
                try p.allowOnly(["ids", "pinned"])
                guard var ids = try p.stringList("ids") else { throw .invalidParams("ids", "required") }
                guard let pinned = try p.optionalBool("pinned") else { throw .invalidParams("pinned", "required") }
                if !session.authorization.unrestricted {
                    // Records the caller may not write are treated like unknown ids (ignored),
                    // which reveals nothing about them.
                    let writable = Set(try ep.records(ids: ids).filter { session.authorization.allows(.write, $0.ns) }.map(\.id))
                    let asked = ids
                    ids = asked.filter { writable.contains($0) }
                    if ids.isEmpty && !asked.isEmpty {
                        out.raw("{\"updated\":0}")
                        return
                    }
                }
                let r = try ep.pin(ids: ids, pinned: pinned)
                out.raw("{\"updated\":")
                out.int(r.updated)
                if let rev = r.rev {
                    out.raw(",\"rev\":")
                    out.int(rev)
                }
                out.byte(UInt8(ascii: "}"))
            }),
        ]
    }
}

extension EpisodeRecord {
    /// Writes the `ep_record` object of the contract (plus `score` and `match` for a search hit).
    func write(to w: inout JSONWriter, score: Double? = nil, match: SearchMatch? = nil) {
        w.raw("{\"id\":")
        w.string(id)
        w.raw(",\"ns\":")
        w.string(ns)
        w.raw(",\"kind\":")
        w.string(kind)
        w.raw(",\"content\":")
        w.string(content)
        w.raw(",\"data\":")
        if let data { w.raw(data) } else { w.raw("null") }
        w.raw(",\"task\":")
        if let task { w.string(task) } else { w.raw("null") }
        w.raw(",\"tags\":")
        w.value(.array(tags.map(JSON.string)))
        w.raw(",\"at\":")
        Timestamp.write(at, to: &w)
        w.raw(",\"rev\":")
        w.int(rev)
        w.raw(",\"provenance\":")
        provenance.write(to: &w)
        w.raw(",\"summarized\":")
        w.bool(summarized)
        w.raw(",\"pinned\":")
        w.bool(pinned)
        w.raw(",\"derived_from\":")
        w.value(.array(derivedFrom.map(JSON.string)))
        if let score {
            w.raw(",\"score\":")
            w.double(score)
        }
        if let match {
            w.raw(",\"match\":")
            match.write(to: &w)
        }
        w.byte(UInt8(ascii: "}"))
    }
}

extension Params {
    /// An optional array of strings.
    func stringList(_ key: String) throws(WireError) -> [String]? {
        guard let list = try optionalArray(key) else { return nil }
        var out: [String] = []
        out.reserveCapacity(list.count)
        for item in list {
            guard let s = item.stringValue else { throw .invalidParams(name(key), "must be an array of strings") }
            out.append(s)
        }
        return out
    }

    /// An optional timestamp in the wire's one form, `2026-11-22T00:14:52.123Z`.
    func timestamp(_ key: String) throws(WireError) -> Int64? {
        guard let s = try optionalString(key) else { return nil }
        let b = Array(s.utf8)
        guard b.count == 24, b[19] == UInt8(ascii: "."), b[23] == UInt8(ascii: "Z"), let ms = Timestamp.parse(s) else {
            throw .invalidParams(name(key), "must be an RFC 3339 UTC timestamp with milliseconds, e.g. 2026-11-22T00:14:52.123Z")
        }
        return ms
    }
}
