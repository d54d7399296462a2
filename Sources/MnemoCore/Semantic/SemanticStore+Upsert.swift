import Foundation
import GRDB
import MnemoProtocol

extension SemanticStore {
    /// What `sem.upsert` does about near-duplicates (`dedupe`).
    public enum Dedupe: String, Sendable, CaseIterable {
        /// No scan, no `similar` (the default: an upsert costs no search, so bulk loads are linear).
        case none
        /// Scan the collection and report near-duplicates in `similar`.
        case report
        /// Scan, report, and (without an `id`) update the best near-duplicate instead of adding a record.
        case merge
    }

    /// What `sem.upsert` does when it is a near-duplicate of a record that states something
    /// else (``conflicts(of:among:)``): `on_conflict`.
    public enum OnConflict: String, Sendable, CaseIterable {
        /// The new record supersedes the best-scoring conflicting one.
        case supersede
        /// Both are kept (the conflicts are reported).
        case keepBoth = "keep_both"
        /// The upsert is refused with `CONFLICT` naming them; nothing applied.
        case reject
    }

    /// What `sem.upsert` asks for.
    public struct Upsert: Sendable {
        /// The namespace (= the collection).
        public var ns: String
        /// The record's id; nil: the server assigns `f-<revision>`.
        public var id: String?
        /// The fact's text.
        public var text: String
        /// The client's vector; nil: the embedder embeds `text`.
        public var vector: [Float]?
        /// Raw JSON payload.
        public var data: [UInt8]?
        /// Tags.
        public var tags: [String] = []
        /// Confidence 0...1.
        public var confidence: Double?
        /// The id of the record (same namespace) this one replaces.
        public var supersedes: String?
        /// Time to live.
        public var ttlMs: Int64?
        /// Near-duplicate handling.
        public var dedupe: Dedupe = .none
        /// What a conflicting near-duplicate decides; nil: no conflict check unless `dedupe`
        /// scans (then conflicts are reported and both kept, as before conflicts were named).
        public var onConflict: OnConflict?
        /// When the fact began to hold (wall ms); nil: the write time.
        public var validFrom: Int64?
        /// When it stops holding (wall ms, after `validFrom`); nil: open.
        public var validTo: Int64?

        /// An upsert of `text` into `ns`.
        public init(ns: String, text: String) {
            self.ns = ns
            self.text = text
        }
    }

    /// What `sem.upsert` answers.
    public struct UpsertResult: Sendable {
        /// The record's id.
        public var id: String
        /// Its revision.
        public var version: Int64
        /// Set with `merge`: whether an existing record was updated.
        public var merged: Bool?
        /// Existing near-duplicates (score >= ``similarScore``), best first; nil when no
        /// scan was made (`dedupe: none` and no `on_conflict`).
        public var similar: [(id: String, score: Float)]?
        /// The near-duplicates whose text differs (the conflicts), best first; nil when no
        /// scan was made.
        public var conflicts: [(id: String, score: Float)]?
        /// The record this one superseded (`supersedes`, or the conflict `on_conflict:
        /// supersede` chose); nil when none.
        public var superseded: String?
        /// Whether the embedder cut the text to the model's maximum length.
        public var truncated: Bool
    }

    /// Inserts or replaces a record. Blocks on the group commit: call from a worker.
    /// - Throws: see ``upsert(_:by:)-batch``. Nothing is applied on error.
    /// - Complexity: see ``upsert(_:by:)-batch`` (n = 1).
    public func upsert(_ u: Upsert, by caller: Caller) throws(WireError) -> UpsertResult {
        try upsert([u], by: caller)[0].get()
    }

    /// An upsert ready to be written: its vector, and the near-duplicate scan done.
    private struct Planned: Sendable {
        var index: Int
        var upsert: Upsert
        var vector: [Float]
        var prepared: [Float]
        var model: String
        var similar: [(id: String, score: Float, text: String)]?
        var conflicts: [(id: String, score: Float, text: String)]?
        /// The id to write: the given one, the merge target, or nil (a new `f-<rev>`).
        var target: String?
        /// The record it supersedes: `supersedes`, or the conflict `on_conflict: supersede` chose.
        var supersedes: String?
        var truncated: Bool
    }

    /// What a planned upsert changed, for the in-memory collections once committed.
    private struct Applied {
        var record: SemanticRecord
        var prepared: [Float]
        var model: String
        var isNew: Bool
        /// The record it superseded, and that record's new end of validity.
        var superseded: (id: String, validTo: Int64)?
    }

    /// Inserts or replaces several records together: the texts without a vector are
    /// embedded in ONE call of the embedder (one packed batch), and every upsert is
    /// written in ONE SQLite transaction (checked before it writes anything, with its own
    /// revision, in order). Each item has its own outcome: an item's error applies nothing
    /// of it and does not stop the others. An embedder failure (`UNAVAILABLE`) fails every
    /// item that needed it; a text with nothing to embed fails only its own item.
    /// Near-duplicates (`dedupe` report / merge, `on_conflict`) are looked for among the
    /// records stored before the batch, not among its other items.
    /// A storage failure (disk full, I/O) fails every item of the batch: nothing applied.
    /// - Returns: one outcome per upsert, in order. Errors: `DIMENSION_MISMATCH` when the
    ///   vector (or the embedder's model) does not fit the namespace's collection;
    ///   `NOT_FOUND` when `supersedes` names no record; `LIMIT_EXCEEDED` past
    ///   `max_fact_text_bytes` or `max_semantic_records`; `CONFLICT` with `on_conflict:
    ///   reject` and a conflicting near-duplicate; `-32602` for bad text, vectors or
    ///   validity; `UNAVAILABLE` when the embedder or the disk fails.
    /// - Complexity: one embedder call, one group commit with O(1) indexed statements per
    ///   item (plus its text's FTS5 postings; a replaced version is copied to the history),
    ///   O(dims) per item in memory; plus one scan of the collection per item with `dedupe`
    ///   report or merge, or `on_conflict`.
    public func upsert(_ batch: [Upsert], by caller: Caller) -> [Result<UpsertResult, WireError>] {
        var results = [Result<UpsertResult, WireError>?](repeating: nil, count: batch.count)
        let now = time.nowMs()
        for (i, u) in batch.enumerated() {
            if u.text.utf8.count > limits.maxFactTextBytes {
                results[i] = .failure(.limit("max_fact_text_bytes", max: limits.maxFactTextBytes,
                                             "text longer than \(limits.maxFactTextBytes) bytes"))
            } else if u.supersedes != nil && u.supersedes == u.id {
                results[i] = .failure(.invalidParams("supersedes", "a record cannot supersede itself"))
            } else if let end = u.validTo, end <= (u.validFrom ?? now) {
                results[i] = .failure(.invalidParams("valid_to", "must be later than valid_from (or the write time)"))
            }
        }
        let embedded = embedTexts(batch.indices.filter { results[$0] == nil && batch[$0].vector == nil },
                                  of: batch.map(\.text), field: "text")
        var planned: [Planned] = []
        planned.reserveCapacity(batch.count)
        for (i, u) in batch.enumerated() where results[i] == nil {
            do throws(WireError) {
                planned.append(try plan(u, index: i, embedded: embedded[i], now: now))
            } catch {
                results[i] = .failure(error)
            }
        }
        if !planned.isEmpty {
            do throws(WireError) {
                let written = try write(planned, by: caller, now: now)
                for (p, w) in zip(planned, written) {
                    results[p.index] = w.map { id, version, existed in
                        UpsertResult(id: id, version: version,
                                     merged: p.upsert.dedupe == .merge ? (existed && p.target != nil && p.upsert.id == nil) : nil,
                                     similar: p.similar?.map { ($0.id, $0.score) },
                                     conflicts: p.conflicts?.map { ($0.id, $0.score) }, superseded: p.supersedes,
                                     truncated: p.truncated)
                    }
                }
            } catch {
                for p in planned { results[p.index] = .failure(error) }
            }
        }
        return results.map { $0 ?? .failure(.internal("upsert result missing")) }
    }

    /// The vector of `u` checked against its collection, and its near-duplicates.
    private func plan(_ u: Upsert, index: Int, embedded: Result<Embedding, WireError>?, now: Int64) throws(WireError) -> Planned {
        let vector: [Float], model: String
        var truncated = false
        if let v = u.vector {
            (vector, model) = (v, Self.clientModel)
        } else {
            guard let embedded else { throw .internal("upsert \(index) was not embedded") }
            let e = try embedded.get()
            (vector, model, truncated) = (e.vector, embedder.model, e.truncated)
        }
        let existing = collection(u.ns)
        if let c = existing { try Self.check(c, dims: vector.count, model: model) }
        let prepared = try VectorCodec.prepare(vector, for: existing?.metric ?? defaultMetric,
                                               field: u.vector == nil ? "text" : "vector")
        var similar: [(id: String, score: Float, text: String)]?
        if u.dedupe != .none || u.onConflict != nil {
            similar = []
            if let c = existing {
                var tops = [TopK<SemanticRecord>(k: 5)]
                var filter = SearchFilter()
                filter.minScore = similarScore
                c.search([prepared], filter: filter, now: now, into: &tops)
                similar = tops[0].sorted().filter { $0.item.id != u.id }.map { ($0.item.id, $0.score, $0.item.text) }
            }
        }
        let conflicts = similar.map { Self.conflicts(of: u.text, among: $0) }
        var supersedes = u.supersedes
        switch u.onConflict {
        case .reject? where conflicts?.isEmpty == false:
            let list = conflicts ?? []
            throw .app(.conflict, "\(list.count) near-duplicate record(s) in \(u.ns) state something else: \(list.map(\.id).joined(separator: ", "))",
                       [JSONMember("conflicts", .array(list.map { c in
                           .object([JSONMember("id", .string(c.id)), JSONMember("score", .number(String(Double(c.score))))])
                       }))])
        case .supersede?:
            supersedes = conflicts?.first?.id
        default:
            break
        }
        let target = u.dedupe == .merge && u.id == nil ? similar?.first?.id : u.id
        return Planned(index: index, upsert: u, vector: vector, prepared: prepared, model: model, similar: similar,
                       conflicts: conflicts, target: target, supersedes: supersedes, truncated: truncated)
    }

    /// The near-duplicates that state something else than `text`: their text differs once
    /// case and runs of white space are ignored.
    static func conflicts(of text: String, among similar: [(id: String, score: Float, text: String)])
        -> [(id: String, score: Float, text: String)] {
        let mine = normalized(text)
        return similar.filter { normalized($0.text) != mine }
    }

    private static func normalized(_ text: String) -> String {
        text.lowercased().split(whereSeparator: \.isWhitespace).joined(separator: " ")
    }

    /// Writes the planned upserts in one group commit, each checked before it writes; then
    /// (after the commit, on the writer thread) applies them to the collections in order
    /// and emits their watch events.
    /// - Returns: per planned upsert, `(id, version, whether it replaced a record)` or its error.
    /// - Throws: `UNAVAILABLE` when the transaction could not commit (nothing applied).
    private func write(_ planned: [Planned], by caller: Caller, now: Int64) throws(WireError)
        -> [Result<(String, Int64, Bool), WireError>] {
        let defaultMetric = self.defaultMetric
        let maxRecords = limits.maxSemanticRecords
        let quota = quotas.limit(caller.principal, \.semanticRecords)
        let maxVersions = limits.maxFactVersions
        return try db.write { [self] ctx in
            var out: [Result<(String, Int64, Bool), WireError>] = []
            out.reserveCapacity(planned.count)
            var applied: [Applied] = []
            applied.reserveCapacity(planned.count)
            var added = 0
            var index = KeywordIndexChanges()
            var known: [String: (dims: Int, model: String)] = [:]
            for p in planned {
                // Every check reads, and comes before the item writes anything: a refused
                // item leaves no trace, without a savepoint per item (a savepoint costs
                // two statements, and makes FTS5 flush).
                let checked: Checked
                do {
                    checked = try Self.check(p, ctx: ctx, known: &known) { old in
                        if old == nil && recordCount.load(ordering: .relaxed) + added >= maxRecords {
                            throw WireError.limit("max_semantic_records", max: maxRecords, "semantic memory holds \(maxRecords) records")
                        }
                        // Replacing its own record adds nothing to the writer's count.
                        if let quota, old?.provenance.principal != caller.principal {
                            let own = try PrincipalUsage.of(ctx.db, caller.principal).records
                            guard own < quota else {
                                throw Quota.exceeded("semantic_records", max: quota, principal: caller.principal, "it wrote \(own) facts")
                            }
                        }
                    }
                } catch {
                    out.append(.failure(db.wireError(error)))
                    continue
                }
                // A failure while writing is the storage's: it fails the whole write
                // (rolled back by its savepoint in the group commit), every item alike.
                let done = try Self.apply(checked, ctx: ctx, caller: caller, now: now, defaultMetric: defaultMetric,
                                          maxVersions: maxVersions, index: &index)
                if checked.newCollection { known[p.upsert.ns] = (p.vector.count, p.model) }
                if done.isNew { added += 1 }
                applied.append(done)
                out.append(.success((done.record.id, done.record.version, !done.isNew)))
            }
            // An index failure fails the whole write (its savepoint in the group commit).
            try index.apply(ctx.db)
            let changes = applied
            ctx.afterCommit { [self] in
                var last: VectorCollection?
                var events: [WatchEvent] = []
                events.reserveCapacity(changes.count)
                for a in changes {
                    let ns = a.record.ns
                    let c: VectorCollection
                    if let l = last, l.ns == ns {
                        c = l
                    } else {
                        c = collections.withLock { all in
                            if let c = all[ns] { return c }
                            let c = VectorCollection(ns: ns, dims: a.prepared.count, metric: defaultMetric, model: a.model)
                            all[ns] = c
                            return c
                        }
                        last = c
                    }
                    c.put(a.record, prepared: a.prepared)
                    if a.isNew { recordCount.add(1, ordering: .relaxed) }
                    if let sup = a.superseded {
                        c.update(sup.id) {
                            $0.supersededBy = a.record.id
                            $0.validTo = sup.validTo
                        }
                    }
                    events.append(WatchEvent(rev: a.record.version, tier: "sem", kind: "upsert", ns: ns, id: a.record.id))
                }
                observers.emit(events)
            }
            return out
        }
    }

    /// An upsert whose checks passed, ready to write.
    private struct Checked {
        var planned: Planned
        var rev: Int64
        var id: String
        var newCollection: Bool
        var oldRow: Row?
        var old: SemanticRecord?
        /// The record it supersedes, as stored.
        var superseded: SemanticRecord?
    }

    /// One upsert's checks (reads only): its collection (`known` caches the collections
    /// met in this write), `supersedes`, the record it replaces, and `admit` (the record limit).
    /// - Throws: `DIMENSION_MISMATCH`, `NOT_FOUND`, what `admit` throws; nothing written.
    private static func check(_ p: Planned, ctx: WriteContext, known: inout [String: (dims: Int, model: String)],
                              admit: (_ old: SemanticRecord?) throws -> Void) throws -> Checked {
        let db = ctx.db
        let u = p.upsert
        var newCollection = false
        if let c = known[u.ns] {
            try check(ns: u.ns, dims: c.dims, model: c.model, gotDims: p.vector.count, gotModel: p.model)
        } else if let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT dims, model FROM collections WHERE ns = ?"), arguments: [u.ns]) {
            known[u.ns] = (row[0], row[1])
            try check(ns: u.ns, dims: row[0], model: row[1], gotDims: p.vector.count, gotModel: p.model)
        } else {
            newCollection = true
        }
        var superseded: SemanticRecord?
        if let sup = p.supersedes {
            guard let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT \(columns) FROM facts WHERE ns = ? AND id = ?"),
                                             arguments: [u.ns, sup])
            else { throw WireError.app(.notFound, "supersedes: no record \(sup) in \(u.ns)", [JSONMember("id", .string(sup))]) }
            superseded = try record(row)
        }
        // The record it replaces (a server-made id `f-N` is new by construction), admitted
        // before a revision is taken: a refused upsert leaves no gap in the revisions.
        let oldRow = try p.target.flatMap { target in
            try Row.fetchOne(db.cachedStatement(sql: "SELECT seq, nskey, \(columns) FROM facts WHERE ns = ? AND id = ?"),
                             arguments: [u.ns, target])
        }
        let old = try oldRow.map(record)
        try admit(old)
        let rev = try ctx.nextRevision()
        let id = p.target ?? "f-\(rev)"
        return Checked(planned: p, rev: rev, id: id, newCollection: newCollection, oldRow: oldRow, old: old,
                       superseded: superseded)
    }

    /// One checked upsert's writes: the record, the version it replaces moved to the history
    /// (keeping the newest `maxVersions`), and the supersession; their keyword index changes
    /// into `index`.
    /// - Throws: only storage errors.
    private static func apply(_ c: Checked, ctx: WriteContext, caller: Caller, now: Int64, defaultMetric: Metric,
                              maxVersions: Int, index: inout KeywordIndexChanges) throws -> Applied {
        let db = ctx.db
        let p = c.planned
        let u = p.upsert
        if c.newCollection {
            try db.cachedStatement(sql: "INSERT INTO collections (ns, dims, metric, model) VALUES (?, ?, ?, ?)")
                .execute(arguments: [u.ns, p.vector.count, defaultMetric.rawValue, p.model])
        }
        let validFrom = u.validFrom ?? now
        var record = SemanticRecord(
            id: c.id, ns: u.ns, text: u.text, data: u.data, tags: u.tags, confidence: u.confidence,
            supersededBy: c.old?.supersededBy, expiresAt: u.ttlMs.map { now + $0 }, version: c.rev,
            provenance: Provenance(caller: caller, at: now, rev: c.rev), validFrom: validFrom, validTo: u.validTo)
        if let oldRow = c.oldRow, let old = c.old {
            if p.target != u.id {
                // Merged into a near-duplicate: the new text and vector, the union of the
                // tags, and the old data and confidence unless new ones were given.
                record.tags = old.tags + u.tags.filter { !old.tags.contains($0) }
                record.data = u.data ?? old.data
                record.confidence = u.confidence ?? old.confidence
            }
            // A superseded record stays closed when a new version of it is written.
            if old.supersededBy != nil && u.validTo == nil { record.validTo = old.validTo }
            try FactHistory.keep(old, closedAt: old.closed(at: validFrom), in: db, max: maxVersions, index: &index)
            index.deleted(seq: oldRow["seq"], text: old.text, nskey: oldRow["nskey"])
            try db.cachedStatement(sql: "DELETE FROM facts WHERE ns = ? AND id = ?").execute(arguments: [u.ns, c.id])
        }
        index.inserted(seq: try insert(record, vector: p.vector, into: db))
        var superseded: (id: String, validTo: Int64)?
        if let target = c.superseded {
            let end = target.closed(at: validFrom)
            try db.cachedStatement(sql: "UPDATE facts SET superseded_by = ?, valid_to = ? WHERE ns = ? AND id = ?")
                .execute(arguments: [c.id, end, u.ns, target.id])
            superseded = (target.id, end)
        }
        return Applied(record: record, prepared: p.prepared, model: p.model, isNew: c.old == nil, superseded: superseded)
    }
}
