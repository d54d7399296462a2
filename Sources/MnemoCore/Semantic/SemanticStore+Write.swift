import Foundation
import GRDB
import MnemoProtocol

extension SemanticStore {
    /// Deletes a record and its past versions; its revision, or nil when there was none.
    /// - Throws: `UNAVAILABLE` when the disk fails (nothing applied).
    public func delete(ns: String, id: String) throws(WireError) -> Int64? {
        try delete(ns: ns, ids: [id], kind: "delete").first
    }

    /// Deletes the records of `ids` that exist, in one commit, each with its own
    /// revision; the revisions, in order.
    private func delete(ns: String, ids: [String], kind: String) throws(WireError) -> [Int64] {
        try db.write { [self] ctx in
            var deleted: [(id: String, rev: Int64)] = []
            var index = KeywordIndexChanges()
            for id in ids {
                guard let row = try Row.fetchOne(ctx.db.cachedStatement(sql: "SELECT seq, text, nskey FROM facts WHERE ns = ? AND id = ?"),
                                                 arguments: [ns, id])
                else { continue }
                let rev = try ctx.nextRevision()
                try ctx.db.cachedStatement(sql: "DELETE FROM facts WHERE ns = ? AND id = ?").execute(arguments: [ns, id])
                index.deleted(seq: row["seq"], text: row["text"], nskey: row["nskey"])
                try FactHistory.forget(ns: ns, id: id, in: ctx.db, index: &index)
                deleted.append((id, rev))
            }
            try index.apply(ctx.db)
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

    /// The version of a live record believed valid at wall time `asOf` (the live one if it
    /// held then, else the newest past version that did); nil when none did. One read
    /// transaction: a consistent view of the record and its history.
    /// - Throws: `UNAVAILABLE` (or `CORRUPT`) when the database cannot be read.
    public func get(ns: String, id: String, asOf: Int64) throws(WireError) -> SemanticRecord? {
        let now = time.nowMs()
        return try db.read { db in
            guard let live = try Self.liveRecord(ns: ns, id: id, now: now, in: db) else { return nil }
            if live.isValid(at: asOf) { return live }
            return try FactHistory.version(ns: ns, id: id, asOf: asOf, in: db)
        }
    }

    /// The versions of a live record, newest first: the live one, then its past versions
    /// (at most `max_fact_versions`); nil when the record is absent or expired. One read
    /// transaction.
    /// - Throws: `UNAVAILABLE` (or `CORRUPT`) when the database cannot be read.
    public func history(ns: String, id: String) throws(WireError) -> [SemanticRecord]? {
        let now = time.nowMs()
        return try db.read { db in
            guard let live = try Self.liveRecord(ns: ns, id: id, now: now, in: db) else { return nil }
            return [live] + (try FactHistory.versions(ns: ns, id: id, in: db))
        }
    }

    /// The stored live record, unless absent or expired at `now`.
    static func liveRecord(ns: String, id: String, now: Int64, in db: Database) throws -> SemanticRecord? {
        guard let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT \(columns) FROM facts WHERE ns = ? AND id = ?"),
                                         arguments: [ns, id]) else { return nil }
        let r = try record(row)
        return r.isExpired(at: now) ? nil : r
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
