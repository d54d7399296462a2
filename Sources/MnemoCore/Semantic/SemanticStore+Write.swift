import Foundation
import GRDB
import MnemoProtocol

extension SemanticStore {
    /// What `sem.upsert` asks for.
    public struct Upsert: Sendable {
        public var ns: String
        public var id: String?
        public var text: String
        /// The client's vector; nil: the embedder embeds `text`.
        public var vector: [Float]?
        public var data: [UInt8]?
        public var tags: [String] = []
        public var confidence: Double?
        public var supersedes: String?
        public var ttlMs: Int64?
        /// `dedupe: "merge"`: update the nearest near-duplicate instead of adding a record.
        public var merge = false

        /// An upsert of `text` into `ns`.
        public init(ns: String, text: String) {
            self.ns = ns
            self.text = text
        }
    }

    /// What `sem.upsert` answers.
    public struct UpsertResult: Sendable {
        public var id: String
        public var version: Int64
        /// Set with `merge`: whether an existing record was updated.
        public var merged: Bool?
        /// Existing near-duplicates (score >= ``similarScore``), best first.
        public var similar: [(id: String, score: Float)]
    }

    /// Inserts or replaces a record. Blocks on the group commit: call from a worker.
    /// - Throws: `DIMENSION_MISMATCH` when the vector (or the embedder's model) does not
    ///   fit the namespace's collection; `NOT_FOUND` when `supersedes` names no record;
    ///   `LIMIT_EXCEEDED` past `max_semantic_records`; `-32602` for bad text or vectors;
    ///   `UNAVAILABLE` when the embedder or the disk fails. Nothing is applied on error.
    /// - Complexity: one scan of the namespace's collection (for `similar`), one embedding
    ///   when no vector is given, one group commit.
    public func upsert(_ u: Upsert, by caller: Caller) throws(WireError) -> UpsertResult {
        guard u.text.utf8.count <= limits.maxFactTextBytes else {
            throw .limit("max_fact_text_bytes", max: limits.maxFactTextBytes, "text longer than \(limits.maxFactTextBytes) bytes")
        }
        guard u.supersedes == nil || u.supersedes != u.id else { throw .invalidParams("supersedes", "a record cannot supersede itself") }
        let (vector, model) = try embedding(u.vector, text: u.text)
        let existing = collection(u.ns)
        if let c = existing { try Self.check(c, dims: vector.count, model: model) }
        let metric = existing?.metric ?? defaultMetric
        let prepared = try VectorCodec.prepare(vector, for: metric, field: u.vector == nil ? "text" : "vector")

        var similar: [(id: String, score: Float)] = []
        if let c = existing {
            var tops = [TopK<SemanticRecord>(k: 5)]
            var filter = SearchFilter()
            filter.minScore = similarScore
            c.search([prepared], filter: filter, now: time.nowMs(), into: &tops)
            similar = tops[0].sorted().filter { $0.item.id != u.id }.map { ($0.item.id, $0.score) }
        }
        let target = u.merge && u.id == nil ? similar.first?.id : u.id
        let stored = VectorCodec.bytes(vector)
        let dims = vector.count
        let now = time.nowMs()
        let defaultMetric = self.defaultMetric
        let maxRecords = limits.maxSemanticRecords
        let (id, version, existed) = try db.write { [self] ctx in
            let db = ctx.db
            if let row = try Row.fetchOne(db, sql: "SELECT dims, model FROM collections WHERE ns = ?", arguments: [u.ns]) {
                try Self.check(ns: u.ns, dims: row[0], model: row[1], gotDims: dims, gotModel: model)
            } else {
                try db.execute(sql: "INSERT INTO collections (ns, dims, metric, model) VALUES (?, ?, ?, ?)",
                               arguments: [u.ns, dims, defaultMetric.rawValue, model])
            }
            if let sup = u.supersedes,
               try Bool.fetchOne(db, sql: "SELECT 1 FROM facts WHERE ns = ? AND id = ?", arguments: [u.ns, sup]) == nil {
                throw WireError.app(.notFound, "supersedes: no record \(sup) in \(u.ns)", [JSONMember("id", .string(sup))])
            }
            let rev = try ctx.nextRevision()
            let id = target ?? "f-\(rev)"
            let oldRow = try Row.fetchOne(db, sql: "SELECT \(Self.columns) FROM facts WHERE ns = ? AND id = ?", arguments: [u.ns, id])
            let old = try oldRow.map(Self.record)
            if old == nil && recordCount.load(ordering: .relaxed) >= maxRecords {
                throw WireError.limit("max_semantic_records", max: maxRecords, "semantic memory holds \(maxRecords) records")
            }
            var record = SemanticRecord(
                id: id, ns: u.ns, text: u.text, data: u.data, tags: u.tags, confidence: u.confidence,
                supersededBy: old?.supersededBy, expiresAt: u.ttlMs.map { now + $0 }, version: rev,
                provenance: Provenance(caller: caller, at: now, rev: rev))
            if let old, target != u.id {
                // Merged into a near-duplicate: the new text and vector, the union of the
                // tags, and the old data and confidence unless new ones were given.
                record.tags = old.tags + u.tags.filter { !old.tags.contains($0) }
                record.data = u.data ?? old.data
                record.confidence = u.confidence ?? old.confidence
            }
            try db.execute(
                sql: "INSERT OR REPLACE INTO facts (\(Self.columns), vector) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                arguments: [u.ns, id, record.text, record.data.map { String(decoding: $0, as: UTF8.self) }, Self.tagsJSON(record.tags),
                            record.confidence, record.supersededBy, record.expiresAt, rev, caller.agent, caller.principal,
                            Int64(caller.uid), Int64(caller.pid), now, stored])
            if let sup = u.supersedes {
                try db.execute(sql: "UPDATE facts SET superseded_by = ? WHERE ns = ? AND id = ?", arguments: [id, u.ns, sup])
            }
            ctx.afterCommit { [self] in
                let c = collections.withLock { all in
                    if let c = all[u.ns] { return c }
                    let c = VectorCollection(ns: u.ns, dims: dims, metric: defaultMetric, model: model)
                    all[u.ns] = c
                    return c
                }
                c.put(record, prepared: prepared)
                if old == nil { recordCount.add(1, ordering: .relaxed) }
                if let sup = u.supersedes { c.update(sup) { $0.supersededBy = id } }
                observers.emit([WatchEvent(rev: rev, tier: "sem", kind: "upsert", ns: u.ns, id: id)])
            }
            return (id, rev, old != nil)
        }
        return UpsertResult(id: id, version: version, merged: u.merge ? (existed && target != nil && u.id == nil) : nil,
                            similar: similar)
    }

    /// Deletes a record; its revision, or nil when there was none.
    /// - Throws: `UNAVAILABLE` when the disk fails (nothing applied).
    public func delete(ns: String, id: String) throws(WireError) -> Int64? {
        try delete(ns: ns, ids: [id], kind: "delete").first
    }

    /// Deletes the records of `ids` that exist, in one commit, each with its own
    /// revision; the revisions, in order.
    private func delete(ns: String, ids: [String], kind: String) throws(WireError) -> [Int64] {
        try db.write { [self] ctx in
            var deleted: [(id: String, rev: Int64)] = []
            for id in ids {
                guard try Bool.fetchOne(ctx.db, sql: "SELECT 1 FROM facts WHERE ns = ? AND id = ?", arguments: [ns, id]) != nil
                else { continue }
                let rev = try ctx.nextRevision()
                try ctx.db.execute(sql: "DELETE FROM facts WHERE ns = ? AND id = ?", arguments: [ns, id])
                deleted.append((id, rev))
            }
            ctx.afterCommit { [self] in
                for d in deleted where collection(ns)?.remove(d.id) == true { recordCount.subtract(1, ordering: .relaxed) }
                observers.emit(deleted.map { WatchEvent(rev: $0.rev, tier: "sem", kind: kind, ns: ns, id: $0.id) })
            }
            return deleted.map(\.rev)
        }
    }

    /// A live record (nil when absent or past its TTL).
    public func get(ns: String, id: String) -> SemanticRecord? {
        guard let r = collection(ns)?.get(id), !r.isExpired(at: time.nowMs()) else { return nil }
        return r
    }

    /// Deletes records past their TTL (at most `max` per call) and compacts collections
    /// with many tombstones. Run by the background maintenance service.
    /// - Returns: how many records were deleted.
    @discardableResult
    public func maintain(max: Int = 10_000) throws(WireError) -> Int {
        let now = time.nowMs()
        var removed = 0
        for c in collections.withLock({ Array($0.values) }) {
            let ids = Array(c.expired(at: now).prefix(max - removed))
            if !ids.isEmpty { removed += try delete(ns: c.ns, ids: ids, kind: "expire").count }
            if c.needsCompaction { c.compact() }
            if removed >= max { break }
        }
        return removed
    }

    /// The client's vector (model `client`) or the embedder's embedding of `text`.
    func embedding(_ vector: [Float]?, text: String) throws(WireError) -> ([Float], String) {
        if let vector { return (vector, Self.clientModel) }
        return (try embedder.embed(text), embedder.model)
    }

    static func check(_ c: VectorCollection, dims: Int, model: String) throws(WireError) {
        try check(ns: c.ns, dims: c.dims, model: c.model, gotDims: dims, gotModel: model)
    }

    static func check(ns: String, dims: Int, model: String, gotDims: Int, gotModel: String) throws(WireError) {
        guard dims != gotDims || model != gotModel else { return }
        throw .app(.dimensionMismatch,
                   "collection \(ns) holds \(dims)-dimensional vectors of model \(model); got \(gotDims) dimensions of model \(gotModel)",
                   [JSONMember("ns", .string(ns)), JSONMember("dims", .number(String(dims))), JSONMember("model", .string(model)),
                    JSONMember("got_dims", .number(String(gotDims))), JSONMember("got_model", .string(gotModel))])
    }
}
