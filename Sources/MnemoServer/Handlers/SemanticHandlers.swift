import MnemoCore
import MnemoProtocol

extension Dispatcher {
    /// `sem.*`: run on worker threads (BLAS scans, embeddings and SQLite commits never
    /// block an event loop).
    static func semanticMethods(engine: Engine) -> [(String, Method)] {
        let sem = engine.semantic
        let limits = engine.limits
        return [
            ("sem.upsert", Method(requiresSession: true, offLoop: true) { p, session, out throws(WireError) in
                let r: SemanticStore.UpsertResult
                if let done = session.prefetchedUpserts.removeValue(forKey: session.batchIndex) {
                    r = try done.get()  // written with the rest of its batch line (see prefetchUpserts)
                } else {
                    r = try sem.upsert(try p.semanticUpsert(limits: limits), by: session.callerOrThrow())
                }
                out.raw("{\"id\":")
                out.string(r.id)
                out.raw(",\"version\":")
                out.int(r.version)
                if let merged = r.merged {
                    out.raw(",\"merged\":")
                    out.bool(merged)
                }
                if let similar = r.similar { writeScored("similar", similar, to: &out) }
                if let conflicts = r.conflicts { writeScored("conflicts", conflicts, to: &out) }
                if let superseded = r.superseded {
                    out.raw(",\"superseded\":")
                    out.string(superseded)
                }
                if r.truncated { out.raw(",\"truncated\":true") }
                out.byte(UInt8(ascii: "}"))
            }),
            ("sem.search", Method(requiresSession: true, offLoop: true) { p, session, out throws(WireError) in
                var q = try p.semanticQuery(limits: limits)
                q.visible = session.readable
                let r: SemanticStore.SearchResult
                if let done = session.prefetched.removeValue(forKey: session.batchIndex) {
                    r = try done.get()
                } else {
                    r = try sem.search(q)
                }
                let now = engine.time.nowMs()
                out.raw("{\"hits\":[")
                for (i, hit) in r.hits.enumerated() {
                    if i > 0 { out.byte(UInt8(ascii: ",")) }
                    hit.record.writeFields(to: &out)
                    out.raw(",\"score\":")
                    out.double(hit.score)
                    out.raw(",\"age_ms\":")
                    out.int(max(0, now - hit.record.provenance.at))
                    out.raw(",\"match\":")
                    hit.match.write(to: &out)
                    out.byte(UInt8(ascii: "}"))
                }
                out.byte(UInt8(ascii: "]"))
                if !r.skipped.isEmpty {
                    out.raw(",\"skipped\":")
                    out.value(.array(r.skipped.map(JSON.string)))
                }
                if r.truncated { out.raw(",\"truncated\":true") }
                out.byte(UInt8(ascii: "}"))
            }),
            ("sem.get", Method(requiresSession: true, offLoop: true) { p, _, out throws(WireError) in
                try p.allowOnly(["ns", "id", "as_of", "include_history"])
                let (ns, id) = (try p.namespace(), try p.requiredRecordID("id"))
                let asOf = try p.timestamp("as_of")
                let history = try p.optionalBool("include_history") ?? false
                let found = try asOf.map { t throws(WireError) in try sem.get(ns: ns, id: id, asOf: t) } ?? sem.get(ns: ns, id: id)
                guard let r = found else {
                    out.raw("{\"found\":false}")
                    return
                }
                out.raw("{\"found\":true,\"version\":")
                out.int(r.version)
                out.byte(UInt8(ascii: ","))
                r.writeFields(to: &out, open: false)
                if history {
                    // The record's past versions (its live one is in `sem.history`'s list, not here).
                    let versions = try sem.history(ns: ns, id: id) ?? []
                    writeRecords("history", versions.filter { !$0.isCurrent }, to: &out)
                }
                out.byte(UInt8(ascii: "}"))
            }),
            ("sem.history", Method(requiresSession: true, offLoop: true) { p, _, out throws(WireError) in
                try p.allowOnly(["ns", "id"])
                guard let versions = try sem.history(ns: try p.namespace(), id: try p.requiredRecordID("id")) else {
                    out.raw("{\"found\":false}")
                    return
                }
                out.raw("{\"found\":true")
                writeRecords("versions", versions, to: &out)
                out.byte(UInt8(ascii: "}"))
            }),
            ("sem.delete", Method(requiresSession: true, offLoop: true) { p, _, out throws(WireError) in
                try p.allowOnly(["ns", "id"])
                if let rev = try sem.delete(ns: try p.namespace(), id: try p.requiredRecordID("id")) {
                    out.raw("{\"deleted\":true,\"rev\":")
                    out.int(rev)
                    out.byte(UInt8(ascii: "}"))
                } else {
                    out.raw("{\"deleted\":false}")
                }
            }),
        ]
    }
}

/// Writes `,"<key>":[{"id":…,"score":…},…]`.
private func writeScored(_ key: String, _ items: [(id: String, score: Float)], to out: inout JSONWriter) {
    out.byte(UInt8(ascii: ","))
    out.string(key)
    out.raw(":[")
    for (i, s) in items.enumerated() {
        if i > 0 { out.byte(UInt8(ascii: ",")) }
        out.raw("{\"id\":")
        out.string(s.id)
        out.raw(",\"score\":")
        out.double(Double(s.score))
        out.byte(UInt8(ascii: "}"))
    }
    out.byte(UInt8(ascii: "]"))
}

/// Writes `,"<key>":[record,…]`, each with its `version`.
private func writeRecords(_ key: String, _ records: [SemanticRecord], to out: inout JSONWriter) {
    out.byte(UInt8(ascii: ","))
    out.string(key)
    out.raw(":[")
    for (i, r) in records.enumerated() {
        if i > 0 { out.byte(UInt8(ascii: ",")) }
        out.raw("{\"version\":")
        out.int(r.version)
        out.byte(UInt8(ascii: ","))
        r.writeFields(to: &out, open: false)
        out.byte(UInt8(ascii: "}"))
    }
    out.byte(UInt8(ascii: "]"))
}

extension SemanticRecord {
    /// Writes the fields of `sem_record_fields` (opening the object unless `open` is false;
    /// the caller closes it).
    func writeFields(to w: inout JSONWriter, open: Bool = true) {
        w.raw(open ? "{\"id\":" : "\"id\":")
        w.string(id)
        w.raw(",\"ns\":")
        w.string(ns)
        w.raw(",\"text\":")
        w.string(text)
        w.raw(",\"data\":")
        if let data { w.raw(data) } else { w.raw("null") }
        w.raw(",\"tags\":")
        w.value(.array(tags.map(JSON.string)))
        w.raw(",\"confidence\":")
        if let confidence { w.double(confidence) } else { w.raw("null") }
        w.raw(",\"superseded_by\":")
        if let supersededBy { w.string(supersededBy) } else { w.raw("null") }
        w.raw(",\"expires_at\":")
        if let expiresAt { Timestamp.write(expiresAt, to: &w) } else { w.raw("null") }
        w.raw(",\"valid_from\":")
        Timestamp.write(validFrom, to: &w)
        w.raw(",\"valid_to\":")
        if let validTo { Timestamp.write(validTo, to: &w) } else { w.raw("null") }
        w.raw(isCurrent ? ",\"current\":true" : ",\"current\":false")
        w.raw(",\"provenance\":")
        provenance.write(to: &w)
    }
}

extension Params {
    /// The parameters of `sem.upsert`.
    func semanticUpsert(limits: Limits) throws(WireError) -> SemanticStore.Upsert {
        try allowOnly(["ns", "id", "text", "vector", "vector_b64", "data", "tags", "confidence", "supersedes", "ttl_ms", "dedupe",
                       "on_conflict", "valid_from", "valid_to"])
        var u = SemanticStore.Upsert(ns: try namespace(), text: try string("text"))
        guard !u.text.isEmpty else { throw .invalidParams("text", "must not be empty") }
        u.id = try recordID("id")
        u.vector = try vector(limits: limits, required: false)
        u.data = has("data") ? try any("data").bytes : nil
        if u.data == JSON.null.bytes { u.data = nil }
        u.tags = try tags("tags")
        if let c = self["confidence"] {
            guard let d = c.doubleValue, (0...1).contains(d) else { throw .invalidParams("confidence", "must be a number from 0 to 1") }
            u.confidence = d
        }
        u.supersedes = try recordID("supersedes")
        u.ttlMs = try optionalInt("ttl_ms", in: 1...limits.maxTTLms)
        let dedupe = try optionalString("dedupe") ?? "none"
        guard let mode = SemanticStore.Dedupe(rawValue: dedupe) else {
            throw .invalidParams("dedupe", "must be \"none\", \"report\" or \"merge\", not \"\(dedupe)\"")
        }
        u.dedupe = mode
        if let raw = try optionalString("on_conflict") {
            guard let choice = SemanticStore.OnConflict(rawValue: raw) else {
                throw .invalidParams("on_conflict", "must be \"supersede\", \"keep_both\" or \"reject\", not \"\(raw)\"")
            }
            if mode == .merge { throw .invalidParams("on_conflict", "does not go with dedupe \"merge\" (which updates the near-duplicate)") }
            if choice == .supersede && u.supersedes != nil {
                throw .invalidParams("on_conflict", "\"supersede\" chooses the superseded record; do not also give supersedes")
            }
            u.onConflict = choice
        }
        u.validFrom = try timestamp("valid_from")
        u.validTo = try timestamp("valid_to")
        return u
    }

    /// An optional record id (1 to 256 bytes).
    func recordID(_ key: String) throws(WireError) -> String? {
        guard let id = try optionalString(key) else { return nil }
        guard !id.isEmpty, id.utf8.count <= 256 else { throw .invalidParams(name(key), "must be 1 to 256 bytes") }
        return id
    }

    /// A required record id.
    func requiredRecordID(_ key: String) throws(WireError) -> String {
        guard let id = try recordID(key) else { throw .invalidParams(name(key), "required") }
        return id
    }

    /// Tags: distinct strings of 1 to 128 characters, at most 64.
    func tags(_ key: String) throws(WireError) -> [String] {
        guard let list = try optionalArray(key) else { return [] }
        guard list.count <= 64 else { throw .invalidParams(name(key), "at most 64 tags") }
        var tags: [String] = []
        for item in list {
            guard let t = item.stringValue, !t.isEmpty, t.count <= 128 else {
                throw .invalidParams(name(key), "each tag is a string of 1 to 128 characters")
            }
            guard !tags.contains(t) else { throw .invalidParams(name(key), "duplicate tag \"\(t)\"") }
            tags.append(t)
        }
        return tags
    }

    /// `vector` (JSON numbers) or `vector_b64` (little-endian float32); never both.
    func vector(limits: Limits, required: Bool) throws(WireError) -> [Float]? {
        let numbers = try optionalArray("vector")
        let b64 = try optionalString("vector_b64")
        if numbers != nil && b64 != nil { throw .invalidParams("vector", "give vector or vector_b64, not both") }
        if let numbers { return try VectorCodec.decode(numbers: numbers, field: name("vector"), maxDims: limits.maxVectorDims) }
        if let b64 { return try VectorCodec.decode(base64: b64, field: name("vector_b64"), maxDims: limits.maxVectorDims) }
        return nil
    }

    /// The parameters of `sem.search`.
    func semanticQuery(limits: Limits) throws(WireError) -> SemanticStore.Query {
        try allowOnly(["ns", "vector", "vector_b64", "text", "k", "filter", "min_score", "include_superseded", "mode", "fusion",
                       "as_of", "include_history"])
        let prefix = try namespace()
        let vector = try vector(limits: limits, required: false)
        let text = try optionalString("text")
        if vector != nil && text != nil { throw .invalidParams("text", "give one of vector, vector_b64 or text") }
        if vector == nil {
            guard let text else { throw .invalidParams("vector", "one of vector, vector_b64 or text is required") }
            guard !text.isEmpty else { throw .invalidParams("text", "must not be empty") }
            guard text.utf8.count <= limits.maxFactTextBytes else {
                throw .limit("max_fact_text_bytes", max: limits.maxFactTextBytes, "text longer than \(limits.maxFactTextBytes) bytes")
            }
        }
        let k = Int(try optionalInt("k", in: 1...Int64(limits.maxSearchK)) ?? 10)
        var filter = SearchFilter()
        if let f = try optionalObject("filter") {
            try f.allowOnly(["tags", "agent", "since"])
            filter.tags = try f.tags("tags")
            if let agent = try f.optionalString("agent") {
                try Validate.agent(agent, field: f.name("agent"))
                filter.agent = agent
            }
            filter.since = try f.timestamp("since")
        }
        if let m = self["min_score"] {
            guard let d = m.doubleValue, d.isFinite else { throw .invalidParams("min_score", "must be a number") }
            filter.minScore = Float(d)
        }
        filter.includeSuperseded = try optionalBool("include_superseded") ?? false
        filter.asOf = try timestamp("as_of")
        filter.includeHistory = try optionalBool("include_history") ?? false
        if filter.asOf != nil && filter.includeSuperseded {
            throw .invalidParams("include_superseded", "does not go with as_of, which keeps what was valid then, superseded or not")
        }
        var mode: SearchMode?
        if let raw = try optionalString("mode") { mode = try SearchMode.parse(raw, field: name("mode"), fallback: .vector) }
        // A mode other than vector with a client vector: the store refuses it (`mode(of:)`).
        let fusion = try RankFusion.Method.parse(optionalString("fusion"), field: name("fusion"))
        return SemanticStore.Query(prefix: prefix, vector: vector, text: text, k: k, filter: filter, mode: mode, fusion: fusion)
    }
}
