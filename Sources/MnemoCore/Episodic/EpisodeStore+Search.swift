import Foundation
import GRDB
import MnemoProtocol

extension EpisodeStore {
    /// A search hit: the record and its score (-bm25, higher is better).
    public struct Hit: Sendable, Equatable {
        /// The record.
        public var record: EpisodeRecord
        /// -bm25 over the content column.
        public var score: Double
    }

    /// Keyword search over the content of one namespace, BM25-ranked (best first; ties
    /// newest first). The text is plain words, all of which must match; FTS5 syntax in it
    /// is treated as words (see ``FTSQuery``), so no text is ever a syntax error.
    /// - Throws: -32602 for a bad namespace, text or limit.
    /// - Complexity: proportional to the posting lists of the words and the namespace.
    public func search(ns: String, text: String, limit: Int) throws(WireError) -> [Hit] {
        try Validate.namespace(ns)
        guard !text.isEmpty else { throw .invalidParams("text", "must not be empty") }
        guard text.count <= Limits.maxSearchTextCharacters else {
            throw .invalidParams("text", "longer than \(Limits.maxSearchTextCharacters) characters")
        }
        guard (1...limits.maxListLimit).contains(limit) else {
            throw .invalidParams("limit", "must be between 1 and \(limits.maxListLimit)")
        }
        guard let match = FTSQuery.match(text: text, ns: ns) else { return [] }
        let columns = EpisodeRecord.columns.split(separator: ",").map { "e." + $0.trimmingCharacters(in: .whitespaces) }
            .joined(separator: ", ")
        let sql = """
            SELECT \(columns), bm25(episodes_fts, 1.0, 0.0) AS rank FROM episodes_fts
            JOIN episodes e ON e.rev = episodes_fts.rowid
            WHERE episodes_fts MATCH ? AND e.ns = ?
            ORDER BY rank, e.rev DESC LIMIT ?
            """
        return try store.read { db in
            try Row.fetchAll(db.cachedStatement(sql: sql), arguments: [match, ns, limit]).map { row in
                let rank: Double = row[16]
                return Hit(record: EpisodeRecord(row: row), score: rank == 0 ? 0 : -rank)
            }
        }
    }
}
