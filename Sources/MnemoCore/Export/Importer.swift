import Foundation
import GRDB
import MnemoProtocol

/// Reads a file written by ``Exporter`` back in (`admin.import`).
///
/// The whole file is parsed and checked first (header version, every line's tier and
/// fields, vectors against their collections); a bad file is refused naming the line and
/// nothing is applied. Then each tier is applied: working keys under the store lock in one
/// step, episodic and semantic records in group commits. Idempotent by id: a key
/// (`ns/key`), episodic id or semantic `ns/id` that exists is skipped. Imported records
/// keep their content and provenance but take new revisions.
public enum Importer {
    /// What an import did (or, for a dry run, would do).
    public struct Outcome: Sendable {
        /// Records imported (would be, for a dry run).
        public var imported = 0
        /// Records skipped: their id exists already (or, for keys and facts, their TTL ran out).
        public var skipped = 0
        /// Imported records per tier.
        public var counts = TierCounts()
        /// The last revision written; nil when nothing was.
        public var rev: Int64?
        /// Records outside the caller's grants (a dry run reports them; otherwise the
        /// import is refused): line number and namespace, the first ``maxReported``.
        public var forbidden: [(line: Int, ns: String)] = []
        /// How many records are outside the caller's grants.
        public var forbiddenCount = 0
    }

    /// Most forbidden records an outcome or an error lists.
    public static let maxReported = 100

    /// An export to read: its bytes and how to name it in messages.
    public struct Source: Sendable {
        /// The JSONL export.
        public var bytes: [UInt8]
        /// The file name, or "the streamed lines".
        public var name: String
        /// The request parameter it came from (`path` or `lines`).
        public var field: String

        /// A source.
        public init(bytes: [UInt8], name: String, field: String) {
            self.bytes = bytes
            self.name = name
            self.field = field
        }
    }

    struct Episode: Sendable {
        var ns: String, id: String, kind: String, content: String, data: String?, task: String?
        var tags: String, at: Int64, provenance: Provenance, derivedFrom: String?, summarized: Bool, pinned: Bool
        /// The record's embedding, when the line carries one (stored as it is, not re-embedded).
        var embedding: EpisodeStore.ContentEmbedding?
    }

    struct Fact: Sendable {
        var record: SemanticRecord
        var vector: [Float]
        var prepared: [Float]
        var dims: Int, metric: Metric, model: String
    }

    struct Parsed: Sendable {
        var keys: [WorkingMemory.ExportedKey] = []
        var episodes: [Episode] = []
        var facts: [Fact] = []
        /// Keys and facts already past their expiry.
        var expired = 0
        /// The highest `N` of ids `ep_N` / `f-N`: new revisions must pass it, so that an id
        /// the server derives from a later revision never meets an imported one.
        var maxIDNumber: Int64 = 0
        /// Records whose namespace (after remapping) `allowed` refused.
        var forbidden: [(line: Int, ns: String)] = []
        var forbiddenCount = 0
    }

    /// Imports `source`, moving namespaces by `remap` (first matching rule). When `allowed`
    /// is given, every record's namespace (after remapping) must pass it. With `stampedBy`
    /// (an import by someone who is not a global admin) every record is stamped with that
    /// caller's identity (agent, principal, uid, pid; times and links are kept), and the
    /// import must fit the caller's quotas, counting every record as new.
    /// - Throws: -32602 naming the line for a bad file (nothing applied); `FORBIDDEN` when
    ///   records fall outside `allowed` (nothing applied; a dry run lists them instead);
    ///   `DIMENSION_MISMATCH` when a vector does not fit an existing collection (nothing
    ///   applied); `LIMIT_EXCEEDED` / `UNAVAILABLE` from the stores.
    public static func run(_ engine: Engine, source: Source, dryRun: Bool, remap: [NamespaceRemap],
                           allowed: (@Sendable (String) -> Bool)? = nil, stampedBy: Caller? = nil) throws(WireError) -> Outcome {
        let parsed = try parse(engine, source: source, remap: remap, allowed: allowed, stampedBy: stampedBy)
        if parsed.forbiddenCount > 0 && !dryRun {
            let first = parsed.forbidden.prefix(16).map { "line \($0.line) (\($0.ns))" }.joined(separator: ", ")
            throw .app(.forbidden,
                       "admin.import needs 'a' on every namespace it writes: \(parsed.forbiddenCount) record(s) of \(source.name) are outside your grants (\(first)); nothing was imported",
                       [JSONMember("perms", .string("a")), JSONMember("count", .int(Int64(parsed.forbiddenCount))),
                        JSONMember("records", .array(parsed.forbidden.prefix(16).map {
                            .object([JSONMember("line", .int(Int64($0.line))), JSONMember("ns", .string($0.ns))])
                        }))])
        }
        try checkCollections(engine.semantic, parsed.facts)
        if let stampedBy, !dryRun { try checkQuotas(engine, parsed, stampedBy.principal) }
        if dryRun {
            var out = try plan(engine, parsed)
            out.forbidden = parsed.forbidden
            out.forbiddenCount = parsed.forbiddenCount
            return out
        }
        var out = Outcome()
        out.skipped = parsed.expired
        if !parsed.keys.isEmpty {
            let r = try engine.working.importKeys(parsed.keys)
            out.imported += r.imported
            out.skipped += r.skipped
            if r.imported > 0 { out.counts.add(.wm, r.imported) }
            out.rev = r.rev ?? out.rev
        }
        // Ids the server derives from revisions (ep_N, f-N) must never meet imported ones.
        engine.working.raiseRevision(atLeast: parsed.maxIDNumber)
        var start = 0
        while start < parsed.episodes.count {
            let chunk = Array(parsed.episodes[start..<min(start + chunkSize, parsed.episodes.count)])
            start += chunk.count
            let r = try importEpisodes(engine.episodic, chunk)
            out.imported += r.imported
            out.skipped += chunk.count - r.imported
            if r.imported > 0 { out.counts.add(.ep, r.imported) }
            out.rev = r.rev ?? out.rev
        }
        start = 0
        while start < parsed.facts.count {
            let chunk = Array(parsed.facts[start..<min(start + chunkSize, parsed.facts.count)])
            start += chunk.count
            let r = try importFacts(engine.semantic, chunk)
            out.imported += r.imported
            out.skipped += chunk.count - r.imported
            if r.imported > 0 { out.counts.add(.sem, r.imported) }
            out.rev = r.rev ?? out.rev
        }
        return out
    }

    /// Records per group commit.
    static let chunkSize = 2000

    // MARK: parsing

    static func parse(_ engine: Engine, source: Source, remap: [NamespaceRemap],
                      allowed: (@Sendable (String) -> Bool)?, stampedBy: Caller?) throws(WireError) -> Parsed {
        let bytes = source.bytes
        func stamp(_ p: Provenance) -> Provenance {
            guard let c = stampedBy else { return p }
            var s = p
            (s.agent, s.principal, s.uid, s.pid) = (c.agent, c.principal, c.uid, c.pid)
            return s
        }
        var parsed = Parsed()
        var lineNo = 0
        var sawHeader = false
        let now = engine.time.nowMs()
        let limits = engine.limits
        var start = bytes.startIndex
        while start < bytes.endIndex {
            let end = bytes[start...].firstIndex(of: 0x0A) ?? bytes.endIndex
            let line = bytes[start..<end]
            start = end < bytes.endIndex ? end + 1 : end
            lineNo += 1
            func bad(_ reason: String) -> WireError { .invalidParams(source.field, "\(source.name) line \(lineNo): \(reason); nothing was imported") }
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x0D || $0 == 0x09 }) {
                if !sawHeader { throw bad("empty line where the header was expected") }
                continue
            }
            let json: JSON
            do {
                json = try JSONParser.parse(line, maxDepth: 512)
            } catch {
                throw bad("not JSON (\(error))")
            }
            guard json.objectValue != nil else { throw bad("not a JSON object") }
            if !sawHeader {
                guard json["format"]?.stringValue == ExportFormat.name else {
                    throw bad("not a mnemo export header (format must be \"\(ExportFormat.name)\")")
                }
                guard let v = json["version"] else { throw bad("the header has no format version") }
                guard v.int64Value == ExportFormat.version else {
                    throw bad("unsupported export format version \(v.text) (this mnemod reads version \(ExportFormat.version))")
                }
                sawHeader = true
                continue
            }
            guard let tierName = json["tier"]?.stringValue else { throw bad("no \"tier\"") }
            guard let tier = ExportTier(rawValue: tierName) else { throw bad("unknown tier \"\(tierName)\"") }
            do throws(WireError) {
                let original = try string(json, "ns")
                try Validate.namespace(original, field: "ns")
                let ns = NamespaceRemap.apply(remap, to: original)
                try Validate.namespace(ns, field: "ns (after remapping)")
                if let allowed, !allowed(ns) {
                    parsed.forbiddenCount += 1
                    if parsed.forbidden.count < maxReported { parsed.forbidden.append((lineNo, ns)) }
                }
                switch tier {
                case .wm:
                    let key = try string(json, "key")
                    try Validate.identifier(key, field: "key", max: limits.maxKeyBytes)
                    guard let value = json["value"] else { throw WireError.invalidParams("value", "missing") }
                    let bytes = value.bytes
                    guard bytes.count <= limits.maxValueBytes else {
                        throw WireError.limit("max_value_bytes", max: limits.maxValueBytes, "value of \(bytes.count) bytes")
                    }
                    let expiresAt = try timestamp(json, "expires_at", required: false) ?? 0
                    let prov = stamp(try provenance(json))
                    if expiresAt != 0 && expiresAt <= now {
                        parsed.expired += 1
                    } else {
                        parsed.keys.append(.init(ns: ns, key: key, item: WorkingItem(value: bytes, version: prov.rev, expiresAt: expiresAt,
                                                                                    provenance: prov)))
                    }
                case .ep:
                    let id = try string(json, "id")
                    try Validate.identifier(id, field: "id")
                    let kind = try string(json, "kind")
                    try Validate.agent(kind, field: "kind")
                    let content = try string(json, "content")
                    guard !content.isEmpty, content.utf8.count <= limits.maxEpisodeContentBytes else {
                        throw WireError.invalidParams("content", "must be 1 to \(limits.maxEpisodeContentBytes) bytes")
                    }
                    let data = json["data"].flatMap { $0.isNull ? nil : $0.text }
                    let task = try optionalString(json, "task")
                    let tags = try strings(json, "tags") ?? []
                    let prov = stamp(try provenance(json))
                    parsed.episodes.append(Episode(
                        ns: ns, id: id, kind: kind, content: content, data: data, task: task,
                        tags: EpisodeRecord.encodeList(tags), at: prov.at, provenance: prov,
                        derivedFrom: prov.derivedFrom.map(EpisodeRecord.encodeList),
                        summarized: try bool(json, "summarized"), pinned: try bool(json, "pinned"),
                        embedding: try episodeEmbedding(json, maxDims: limits.maxVectorDims)))
                    parsed.maxIDNumber = max(parsed.maxIDNumber, idNumber(id, prefix: "ep_"))
                case .sem:
                    let id = try string(json, "id")
                    try Validate.identifier(id, field: "id")
                    let text = try string(json, "text")
                    guard !text.isEmpty, text.utf8.count <= limits.maxFactTextBytes else {
                        throw WireError.invalidParams("text", "must be 1 to \(limits.maxFactTextBytes) bytes")
                    }
                    let data = json["data"].flatMap { $0.isNull ? nil : $0.bytes }
                    let tags = try strings(json, "tags") ?? []
                    var confidence: Double?
                    if let c = json["confidence"], !c.isNull {
                        guard let d = c.doubleValue, (0...1).contains(d) else {
                            throw WireError.invalidParams("confidence", "must be a number from 0 to 1")
                        }
                        confidence = d
                    }
                    let supersededBy = try optionalString(json, "superseded_by")
                    let expiresAt = try timestamp(json, "expires_at", required: false)
                    let written = try provenance(json)
                    let validFrom = try timestamp(json, "valid_from", required: false) ?? written.at
                    let validTo = try timestamp(json, "valid_to", required: false)
                    if let validTo, validTo < validFrom {
                        throw WireError.invalidParams("valid_to", "must not be earlier than valid_from")
                    }
                    let prov = stamp(written)
                    guard let dims = json["dims"]?.int64Value, dims >= 1, dims <= Int64(limits.maxVectorDims) else {
                        throw WireError.invalidParams("dims", "must be an integer from 1 to \(limits.maxVectorDims)")
                    }
                    let metricName = try string(json, "metric")
                    guard let metric = Metric(rawValue: metricName) else {
                        throw WireError.invalidParams("metric", "unknown metric \"\(metricName)\"")
                    }
                    let model = try string(json, "model")
                    try Validate.identifier(model, field: "model")
                    let vector = try VectorCodec.decode(base64: try string(json, "vector_b64"), field: "vector_b64",
                                                        maxDims: limits.maxVectorDims)
                    guard vector.count == Int(dims) else {
                        throw WireError.invalidParams("vector_b64", "holds \(vector.count) dimensions; dims is \(dims)")
                    }
                    let prepared = try VectorCodec.prepare(vector, for: metric, field: "vector_b64")
                    if let expiresAt, expiresAt <= now {
                        parsed.expired += 1
                    } else {
                        let record = SemanticRecord(id: id, ns: ns, text: text, data: data, tags: tags, confidence: confidence,
                                                    supersededBy: supersededBy, expiresAt: expiresAt, version: prov.rev,
                                                    provenance: prov, validFrom: validFrom, validTo: validTo)
                        parsed.facts.append(Fact(record: record, vector: vector, prepared: prepared, dims: Int(dims),
                                                 metric: metric, model: model))
                    }
                    parsed.maxIDNumber = max(parsed.maxIDNumber, idNumber(id, prefix: "f-"))
                default:
                    throw WireError.invalidParams("tier", "tier \"\(tierName)\" cannot be imported by this mnemod (it imports \(ExportTier.supported.map(\.rawValue).joined(separator: ", ")))")
                }
            } catch {
                throw bad(describe(error))
            }
        }
        if !sawHeader { throw WireError.invalidParams(source.field, "\(source.name) is empty: no export header; nothing was imported") }
        return parsed
    }

    /// The embedding of an `ep` line (`model`, `dims`, `vector_b64`, `truncated`), nil
    /// when it has no `vector_b64`.
    /// - Throws: -32602 naming the field for a malformed vector or one that does not match `dims`.
    static func episodeEmbedding(_ json: JSON, maxDims: Int) throws(WireError) -> EpisodeStore.ContentEmbedding? {
        guard let b64 = try optionalString(json, "vector_b64") else { return nil }
        let model = try string(json, "model")
        try Validate.identifier(model, field: "model")
        let vector = try VectorCodec.decode(base64: b64, field: "vector_b64", maxDims: maxDims)
        guard let dims = json["dims"]?.int64Value, dims == Int64(vector.count) else {
            throw .invalidParams("dims", "must be the vector's length, \(vector.count)")
        }
        let prepared = try VectorCodec.prepare(vector, for: .cosine, field: "vector_b64")
        return EpisodeStore.ContentEmbedding(vector: vector, prepared: prepared, model: model, truncated: try bool(json, "truncated"))
    }

    /// `field: reason` of a -32602 error, the message of any other.
    static func describe(_ error: WireError) -> String {
        guard error.code == -32602, case .string(let reason)? = error.data.first(where: { $0.key == "reason" })?.value else {
            return error.message
        }
        guard case .string(let field)? = error.data.first(where: { $0.key == "field" })?.value else { return reason }
        return field + ": " + reason
    }

    static func idNumber(_ id: String, prefix: String) -> Int64 {
        guard id.hasPrefix(prefix), let n = Int64(id.dropFirst(prefix.count)) else { return 0 }
        return n
    }

    static func string(_ json: JSON, _ key: String) throws(WireError) -> String {
        guard let s = json[key]?.stringValue else { throw .invalidParams(key, "missing or not a string") }
        return s
    }

    static func optionalString(_ json: JSON, _ key: String) throws(WireError) -> String? {
        guard let v = json[key], !v.isNull else { return nil }
        guard let s = v.stringValue else { throw .invalidParams(key, "must be a string") }
        return s
    }

    static func bool(_ json: JSON, _ key: String) throws(WireError) -> Bool {
        guard let v = json[key], !v.isNull else { return false }
        guard let b = v.boolValue else { throw .invalidParams(key, "must be true or false") }
        return b
    }

    static func strings(_ json: JSON, _ key: String) throws(WireError) -> [String]? {
        guard let v = json[key], !v.isNull else { return nil }
        guard let items = v.arrayValue else { throw .invalidParams(key, "must be an array of strings") }
        var out: [String] = []
        for item in items {
            guard let s = item.stringValue else { throw .invalidParams(key, "must be an array of strings") }
            out.append(s)
        }
        return out
    }

    static func timestamp(_ json: JSON, _ key: String, required: Bool) throws(WireError) -> Int64? {
        guard let v = json[key], !v.isNull else {
            if required { throw .invalidParams(key, "missing") }
            return nil
        }
        guard let s = v.stringValue, let ms = Timestamp.parse(s) else {
            throw .invalidParams(key, "must be an RFC 3339 UTC timestamp with milliseconds")
        }
        return ms
    }

    static func provenance(_ json: JSON) throws(WireError) -> Provenance {
        guard let p = json["provenance"], p.objectValue != nil else { throw .invalidParams("provenance", "missing or not an object") }
        let agent = try string(p, "agent")
        let principal = try string(p, "principal")
        guard let uid = p["uid"]?.int64Value, (0...Int64(UInt32.max)).contains(uid) else {
            throw .invalidParams("provenance.uid", "must be a uid")
        }
        guard let pid = p["pid"]?.int64Value, (0...Int64(Int32.max)).contains(pid) else {
            throw .invalidParams("provenance.pid", "must be a pid")
        }
        guard let at = try timestamp(p, "at", required: true) else { throw .invalidParams("provenance.at", "missing") }
        guard let rev = p["rev"]?.int64Value, rev >= 1 else { throw .invalidParams("provenance.rev", "must be a revision") }
        let task = try optionalString(p, "task")
        let derived = try strings(p, "derived_from")
        let caller = Caller(agent: agent, principal: principal, uid: UInt32(uid), gid: 0, pid: Int32(pid))
        return Provenance(caller: caller, at: at, rev: rev, task: task, derivedFrom: derived)
    }

    /// Every fact must fit its collection: the one that exists, and the other lines of the file.
    static func checkCollections(_ sem: SemanticStore, _ facts: [Fact]) throws(WireError) {
        var seen: [String: (dims: Int, model: String, metric: Metric)] = [:]
        for f in facts {
            let ns = f.record.ns
            let existing: (dims: Int, model: String, metric: Metric)? =
                seen[ns] ?? sem.collection(ns).map { (dims: $0.dims, model: $0.model, metric: $0.metric) }
            if let c = existing {
                guard c.dims == f.dims, c.model == f.model, c.metric == f.metric else {
                    throw .app(.dimensionMismatch,
                               "collection \(ns) holds \(c.dims)-dimensional \(c.metric.rawValue) vectors of model \(c.model); record \(f.record.id) has \(f.dims) dimensions, \(f.metric.rawValue), model \(f.model); nothing was imported",
                               [JSONMember("ns", .string(ns)), JSONMember("id", .string(f.record.id))])
                }
            }
            if seen[ns] == nil { seen[ns] = (dims: f.dims, model: f.model, metric: f.metric) }
        }
    }

    /// - Throws: `LIMIT_EXCEEDED` (`quota.NAME`) when the records, all counted as new, would
    ///   take `principal` past one of its quotas.
    static func checkQuotas(_ engine: Engine, _ parsed: Parsed, _ principal: String) throws(WireError) {
        guard let q = engine.access.quotas.quota(principal) else { return }
        func over(_ name: String, _ max: Int?, _ held: Int, _ adding: Int) throws(WireError) {
            guard let max, held + adding > max else { return }
            throw Quota.exceeded(name, max: max, principal: principal, "it holds \(held), the import adds up to \(adding)")
        }
        let keyBytes = parsed.keys.reduce(0) { $0 + WorkingItem.cost(key: $1.key, valueBytes: $1.item.value.count) }
        try over("working_bytes", q.workingBytes, engine.working.bytesByPrincipal[principal] ?? 0, keyBytes)
        let ep = try engine.episodic.store.usageByPrincipal()[principal] ?? (0, 0)
        try over("episodic_records", q.episodicRecords, ep.records, parsed.episodes.count)
        try over("episodic_bytes", q.episodicBytes, ep.bytes,
                 parsed.episodes.reduce(0) { $0 + $1.content.utf8.count + ($1.data?.utf8.count ?? 0) })
        let sem = try engine.semantic.db.usageByPrincipal()[principal] ?? (0, 0)
        try over("semantic_records", q.semanticRecords, sem.records, parsed.facts.count)
    }

    // MARK: dry run

    static func plan(_ engine: Engine, _ parsed: Parsed) throws(WireError) -> Outcome {
        var out = Outcome()
        out.skipped = parsed.expired
        var keys = Set<String>()
        for k in parsed.keys {
            let id = k.ns + "\u{0}" + k.key
            if engine.working.hasLiveKey(ns: k.ns, key: k.key) || !keys.insert(id).inserted {
                out.skipped += 1
            } else {
                out.counts.add(.wm)
                out.imported += 1
            }
        }
        let episodes = parsed.episodes
        let facts = parsed.facts
        let found = try engine.episodic.store.read { db in
            var ep = 0
            var ids = Set<String>()
            for e in episodes where ids.insert(e.id).inserted {
                if try Bool.fetchOne(db, sql: "SELECT 1 FROM episodes WHERE id = ?", arguments: [e.id]) == nil { ep += 1 }
            }
            return ep
        }
        let fresh = try engine.semantic.db.read { db in
            var n = 0
            var ids = Set<String>()
            for f in facts where ids.insert(f.record.ns + "\u{0}" + f.record.id).inserted {
                if try Bool.fetchOne(db, sql: "SELECT 1 FROM facts WHERE ns = ? AND id = ?", arguments: [f.record.ns, f.record.id]) == nil { n += 1 }
            }
            return n
        }
        if found > 0 { out.counts.add(.ep, found) }
        if fresh > 0 { out.counts.add(.sem, fresh) }
        out.imported += found + fresh
        out.skipped += episodes.count - found + facts.count - fresh
        return out
    }

    // MARK: applying

    static func importEpisodes(_ store: EpisodeStore, _ chunk: [Episode]) throws(WireError) -> (imported: Int, rev: Int64?) {
        let done = try store.store.write { ctx throws -> [(id: String, ns: String, rev: Int64)] in
            var done: [(id: String, ns: String, rev: Int64)] = []
            for e in chunk {
                if try Bool.fetchOne(ctx.db.cachedStatement(sql: "SELECT 1 FROM episodes WHERE id = ?"), arguments: [e.id]) != nil {
                    continue
                }
                let rev = try ctx.nextRevision()
                try ctx.db.cachedStatement(sql: """
                    INSERT INTO episodes (rev, id, ns, kind, content, data, task, tags, at, agent, principal, uid, pid,
                                          derived_from, summarized, pinned, nskey)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """).execute(arguments: [rev, e.id, e.ns, e.kind, e.content, e.data, e.task, e.tags, e.at, e.provenance.agent,
                                             e.provenance.principal, Int64(e.provenance.uid), Int64(e.provenance.pid),
                                             e.derivedFrom, e.summarized, e.pinned, FTSQuery.subtreeKeys(e.ns)])
                if let embedding = e.embedding { try store.storeVector(embedding, rev: rev, id: e.id, ns: e.ns, in: ctx) }
                done.append((e.id, e.ns, rev))
            }
            return done
        }
        if !done.isEmpty {
            store.counters.withLock { $0.records += done.count }
            store.emit(done.map { WatchEvent(rev: $0.rev, tier: "ep", kind: "append", ns: $0.ns, id: $0.id) })
        }
        return (done.count, done.last?.rev)
    }

    static func importFacts(_ sem: SemanticStore, _ chunk: [Fact]) throws(WireError) -> (imported: Int, rev: Int64?) {
        let maxRecords = sem.limits.maxSemanticRecords
        return try sem.db.write { ctx throws -> (imported: Int, rev: Int64?) in
            let db = ctx.db
            var added: [(Fact, SemanticRecord)] = []
            var index = KeywordIndexChanges()
            for f in chunk {
                let ns = f.record.ns
                if let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT dims, model, metric FROM collections WHERE ns = ?"), arguments: [ns]) {
                    try SemanticStore.check(ns: ns, dims: row[0], model: row[1], gotDims: f.dims, gotModel: f.model)
                    guard (row[2] as String) == f.metric.rawValue else {
                        throw WireError.app(.dimensionMismatch, "collection \(ns) uses metric \(row[2] as String); record \(f.record.id) has \(f.metric.rawValue)")
                    }
                } else {
                    try db.cachedStatement(sql: "INSERT INTO collections (ns, dims, metric, model) VALUES (?, ?, ?, ?)")
                        .execute(arguments: [ns, f.dims, f.metric.rawValue, f.model])
                }
                if try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM facts WHERE ns = ? AND id = ?"), arguments: [ns, f.record.id]) != nil {
                    continue
                }
                if sem.recordCount.load(ordering: .relaxed) + added.count >= maxRecords {
                    throw WireError.limit("max_semantic_records", max: maxRecords, "semantic memory holds \(maxRecords) records")
                }
                let rev = try ctx.nextRevision()
                var r = f.record
                r.version = rev
                r.provenance.rev = rev
                index.inserted(seq: try SemanticStore.insert(r, vector: f.vector, into: db))
                added.append((f, r))
            }
            try index.apply(db)
            let committed = added
            ctx.afterCommit {
                for (f, r) in committed {
                    let c = sem.collections.withLock { all in
                        if let c = all[r.ns] { return c }
                        let c = VectorCollection(ns: r.ns, dims: f.dims, metric: f.metric, model: f.model)
                        all[r.ns] = c
                        return c
                    }
                    c.put(r, prepared: f.prepared)
                    sem.recordCount.add(1, ordering: .relaxed)
                }
                sem.observers.emit(committed.map { WatchEvent(rev: $0.1.version, tier: "sem", kind: "upsert", ns: $0.1.ns, id: $0.1.id) })
            }
            return (added.count, added.last?.1.version)
        }
    }
}
