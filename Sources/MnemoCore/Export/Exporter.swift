import Foundation
import GRDB
import MnemoProtocol

/// Writes the JSONL export of `admin.export`: a header line (`export_header`) then one
/// record per line (`export_record`), working keys first, then episodic records in
/// revision order, then semantic records by namespace.
///
/// Consistency: the working tier is captured under its lock at revision `rev`; the
/// episodic and semantic tiers are each read in one read transaction and keep only what
/// was written at or before `rev`. A record changed after `rev` (a semantic upsert over an
/// existing id) is left out rather than exported in its newer form.
public enum Exporter {
    /// What an export wrote.
    public struct Summary: Sendable {
        /// The revision it is consistent at.
        public var rev: Int64
        /// Records per tier.
        public var counts: TierCounts
        /// Lines, header included.
        public var lines: Int
    }

    /// Exports `tiers` under `ns` (nil: everything), handing each line (without its
    /// newline) to `emit`, in order.
    /// - Throws: what `emit` threw, or `UNAVAILABLE`/internal errors from the stores.
    /// - Complexity: O(n) in the records exported, plus sorting the working keys.
    public static func run(_ engine: Engine, ns: String?, tiers: [ExportTier],
                           emit: (_ line: [UInt8]) throws(WireError) -> Void) throws(WireError) -> Summary {
        let tiers = tiers.sorted()
        let captured: (rev: Int64, keys: [WorkingMemory.ExportedKey]) =
            tiers.contains(.wm) ? engine.working.exportKeys(under: ns) : (rev: engine.working.revision, keys: [])
        let rev = captured.rev
        var counts = TierCounts()
        for t in tiers { counts.add(t, 0) }
        var lines = 1
        try emit(ExportFormat.header(rev: rev, at: engine.time.nowMs(), ns: ns, tiers: tiers))
        if tiers.contains(.wm) {
            for k in captured.keys {
                try emit(line(k))
                counts.add(.wm)
                lines += 1
            }
        }
        if tiers.contains(.ep) {
            let n = try episodes(engine.episodic, ns: ns, rev: rev, emit: emit)
            counts.add(.ep, n)
            lines += n
        }
        if tiers.contains(.sem) {
            let n = try facts(engine.semantic, ns: ns, rev: rev, now: engine.time.nowMs(), emit: emit)
            counts.add(.sem, n)
            lines += n
        }
        return Summary(rev: rev, counts: counts, lines: lines)
    }

    static func line(_ k: WorkingMemory.ExportedKey) -> [UInt8] {
        var w = JSONWriter(capacity: 256 + k.item.value.count)
        w.raw("{\"tier\":\"wm\",\"ns\":")
        w.string(k.ns)
        w.raw(",\"key\":")
        w.string(k.key)
        w.raw(",\"value\":")
        w.raw(k.item.value)
        w.raw(",\"version\":")
        w.int(k.item.version)
        if k.item.expiresAt != 0 {
            w.raw(",\"expires_at\":")
            Timestamp.write(k.item.expiresAt, to: &w)
        }
        w.raw(",\"provenance\":")
        k.item.provenance.write(to: &w)
        w.byte(UInt8(ascii: "}"))
        return w.bytes
    }

    /// SQL that keeps rows of namespace `ns` or below (whole segments); two arguments.
    static func nsFilter(_ ns: String?) -> (sql: String, args: StatementArguments) {
        guard let ns else { return ("", []) }
        return (" AND (ns = ? OR substr(ns, 1, ?) = ?)", [ns, ns.utf8.count + 1, ns + "/"])
    }

    /// Streams one line per row of `sql`, all read on one snapshot of `store`: `line`
    /// renders a row (nil skips it) and `emit` sends it. Returns how many lines went out.
    private static func stream(_ store: SQLiteStore, sql: String, arguments: StatementArguments,
                               line: (Row) throws -> [UInt8]?,
                               emit: (_ line: [UInt8]) throws(WireError) -> Void) throws(WireError) -> Int {
        var n = 0
        var failure: WireError?
        do {
            try store.writer.read { db in
                let rows = try Row.fetchCursor(db, sql: sql, arguments: arguments)
                while let row = try rows.next() {
                    guard let bytes = try line(row) else { continue }
                    do throws(WireError) {
                        try emit(bytes)
                    } catch {
                        failure = error
                        return
                    }
                    n += 1
                }
            }
        } catch {
            throw store.wireError(error)
        }
        if let failure { throw failure }
        return n
    }

    private static func episodes(_ store: EpisodeStore, ns: String?, rev: Int64,
                                 emit: (_ line: [UInt8]) throws(WireError) -> Void) throws(WireError) -> Int {
        let filter = nsFilter(ns)
        // The embedding, when the record has one, rides along: model, dims, vector_b64
        // (little-endian float32, bit-exact) and truncated.
        return try stream(store.store, sql: """
            SELECT \(EpisodeRecord.qualifiedColumns("e")), v.model, v.dims, v.vector, v.truncated
            FROM episodes e LEFT JOIN episode_vectors v ON v.rev = e.rev WHERE e.rev <= ?\(filter.sql) ORDER BY e.rev
            """, arguments: StatementArguments([rev]) + filter.args, line: { row in
            let r = EpisodeRecord(columns: row)
            let model: String? = row[EpisodeRecord.columnCount]
            let vector: Data? = row[EpisodeRecord.columnCount + 2]
            var w = JSONWriter(capacity: 256 + r.content.utf8.count + (r.data?.count ?? 0) + (vector?.count ?? 0) * 2)
            w.raw("{\"tier\":\"ep\",\"ns\":")
            w.string(r.ns)
            w.raw(",\"id\":")
            w.string(r.id)
            w.raw(",\"kind\":")
            w.string(r.kind)
            w.raw(",\"content\":")
            w.string(r.content)
            if let data = r.data {
                w.raw(",\"data\":")
                w.raw(data)
            }
            if let task = r.task {
                w.raw(",\"task\":")
                w.string(task)
            }
            w.raw(",\"tags\":")
            w.value(.array(r.tags.map(JSON.string)))
            w.raw(",\"rev\":")
            w.int(r.rev)
            w.raw(",\"at\":")
            Timestamp.write(r.at, to: &w)
            w.raw(",\"summarized\":")
            w.bool(r.summarized)
            w.raw(",\"pinned\":")
            w.bool(r.pinned)
            w.raw(",\"provenance\":")
            r.provenance.write(to: &w)
            if let model, let vector {
                w.raw(",\"model\":")
                w.string(model)
                w.raw(",\"dims\":")
                w.int(row[EpisodeRecord.columnCount + 1] as Int)
                w.raw(",\"vector_b64\":")
                w.string(vector.base64EncodedString())
                w.raw(",\"truncated\":")
                w.bool(row[EpisodeRecord.columnCount + 3])
            }
            w.byte(UInt8(ascii: "}"))
            return w.bytes
        }, emit: emit)
    }

    private static func facts(_ store: SemanticStore, ns: String?, rev: Int64, now: Int64,
                              emit: (_ line: [UInt8]) throws(WireError) -> Void) throws(WireError) -> Int {
        let filter = nsFilter(ns)
        // Collections are only ever added, so an earlier snapshot of them covers every fact.
        let collections = try store.db.read { db in
            try Row.fetchAll(db, sql: "SELECT ns, dims, metric, model FROM collections").reduce(into: [String: (dims: Int, metric: String, model: String)]()) {
                $0[$1[0]] = ($1[1], $1[2], $1[3])
            }
        }
        return try stream(store.db, sql: "SELECT \(SemanticStore.columns), vector FROM facts WHERE version <= ?\(filter.sql) ORDER BY ns, rowid",
                          arguments: StatementArguments([rev]) + filter.args, line: { row in
            let r = try SemanticStore.record(row)
            guard !r.isExpired(at: now), let c = collections[r.ns] else { return nil }
            let vector: Data = row["vector"]
            var w = JSONWriter(capacity: 512 + r.text.utf8.count + vector.count * 2)
            w.raw("{\"tier\":\"sem\",\"ns\":")
            w.string(r.ns)
            w.raw(",\"id\":")
            w.string(r.id)
            w.raw(",\"text\":")
            w.string(r.text)
            if let data = r.data {
                w.raw(",\"data\":")
                w.raw(data)
            }
            w.raw(",\"tags\":")
            w.value(.array(r.tags.map(JSON.string)))
            if let confidence = r.confidence {
                w.raw(",\"confidence\":")
                w.double(confidence)
            }
            if let sup = r.supersededBy {
                w.raw(",\"superseded_by\":")
                w.string(sup)
            }
            if let exp = r.expiresAt {
                w.raw(",\"expires_at\":")
                Timestamp.write(exp, to: &w)
            }
            w.raw(",\"valid_from\":")
            Timestamp.write(r.validFrom, to: &w)
            if let end = r.validTo {
                w.raw(",\"valid_to\":")
                Timestamp.write(end, to: &w)
            }
            w.raw(",\"version\":")
            w.int(r.version)
            w.raw(",\"provenance\":")
            r.provenance.write(to: &w)
            w.raw(",\"dims\":")
            w.int(c.dims)
            w.raw(",\"metric\":")
            w.string(c.metric)
            w.raw(",\"model\":")
            w.string(c.model)
            w.raw(",\"vector_b64\":")
            w.string(vector.base64EncodedString())
            w.byte(UInt8(ascii: "}"))
            return w.bytes
        }, emit: emit)
    }
}
