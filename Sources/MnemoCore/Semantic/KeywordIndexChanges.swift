import GRDB
import MnemoProtocol

/// The changes one write makes to the keyword index (`facts_fts`, over live records and
/// past versions), applied in a few statements at its end.
///
/// The index is kept by the store rather than by triggers: FTS5 (SQLite 3.40) flushes its
/// pending terms to a new segment at every statement savepoint, so an index row written
/// per fact (a trigger) cost a segment write per fact; measured, 70% of a bulk upsert's
/// time. Written once per batch, a batch is one segment.
struct KeywordIndexChanges {
    /// `seq` of the facts and fact_versions rows inserted by this write, to index.
    private var inserted: [Int64] = []
    private var pending: Set<Int64> = []
    /// Indexed rows deleted by this write: `[seq, text, nskey]`, the values they were indexed with.
    private var deleted: [JSON] = []

    /// A facts (or fact_versions) row inserted with `seq`.
    mutating func inserted(seq: Int64) {
        inserted.append(seq)
        pending.insert(seq)
    }

    /// A facts (or fact_versions) row deleted: its index entry goes (or, inserted by this same write, it is
    /// never indexed).
    mutating func deleted(seq: Int64, text: String, nskey: String) {
        if pending.remove(seq) != nil {
            inserted.removeAll { $0 == seq }
        } else {
            deleted.append(.array([.int(seq), .string(text), .string(nskey)]))
        }
    }

    /// Applies the changes: one statement for the deletions, one per table for the insertions.
    /// - Complexity: O(changes x their words), one FTS5 segment.
    func apply(_ db: Database) throws {
        if !deleted.isEmpty {
            try db.cachedStatement(sql: """
                INSERT INTO facts_fts(facts_fts, rowid, text, nskey)
                SELECT 'delete', json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]') FROM json_each(?)
                """).execute(arguments: [Self.json(.array(deleted))])
        }
        // Positive seqs are facts rows, negative ones past versions (``FactHistory``).
        for (table, seqs) in [("facts", inserted.filter { $0 > 0 }), ("fact_versions", inserted.filter { $0 < 0 })] where !seqs.isEmpty {
            try db.cachedStatement(sql: """
                INSERT INTO facts_fts(rowid, text, nskey)
                SELECT seq, text, nskey FROM \(table) WHERE seq IN (SELECT value FROM json_each(?)) ORDER BY seq
                """).execute(arguments: [Self.json(.array(seqs.map { .int($0) }))])
        }
    }

    private static func json(_ v: JSON) -> String {
        var w = JSONWriter(capacity: 256)
        w.value(v)
        return String(decoding: w.bytes, as: UTF8.self)
    }
}
