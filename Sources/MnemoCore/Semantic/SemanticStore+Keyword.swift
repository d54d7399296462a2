import Foundation
import GRDB
import MnemoProtocol

extension SemanticStore {
    /// One candidate of the keyword arm: the record and its -bm25 (higher is better).
    struct KeywordCandidate: Sendable {
        var record: SemanticRecord
        var score: Double
    }

    /// The keyword arm: facts under `prefix` whose text holds ANY of the words of `text`
    /// (quoted by ``FTSQuery``, so no text is a syntax error), ranked by BM25 over the text
    /// (best first; ties by namespace, then id). A paraphrased question shares some words
    /// with a fact, rarely all of them, hence OR. The filter applies as in the vector arm
    /// (tags, agent, since, superseded, expired, and the namespaces in `visible`), except
    /// `min_score`, which is a bar on the vector arm's metric; collections of every dims
    /// and model are searched.
    /// - Throws: `UNAVAILABLE` when the database cannot be read.
    /// - Complexity: proportional to the posting lists of the words and of the prefix,
    ///   plus a sort of the rows matching any word.
    func keywordArm(prefix: String, text: String, limit: Int, filter: SearchFilter,
                    visible: (@Sendable (String) -> Bool)?, now: Int64) throws(WireError) -> [KeywordCandidate] {
        guard limit > 0, let match = FTSQuery.matchAny(text: text, column: "text", prefix: prefix) else { return [] }
        var sql = """
            SELECT \(Self.columns.split(separator: ",").map { "f." + $0.trimmingCharacters(in: .whitespaces) }.joined(separator: ", ")),
                   bm25(facts_fts, 1.0, 0.0) AS rank
            FROM facts_fts JOIN facts f ON f.seq = facts_fts.rowid
            WHERE facts_fts MATCH ? AND (f.expires_at IS NULL OR f.expires_at > ?)
            """
        var arguments: [DatabaseValue] = [match.databaseValue, now.databaseValue]
        if !filter.includeSuperseded { sql += " AND f.superseded_by IS NULL" }
        if let agent = filter.agent {
            sql += " AND f.agent = ?"
            arguments.append(agent.databaseValue)
        }
        if let since = filter.since {
            sql += " AND f.at >= ?"
            arguments.append(since.databaseValue)
        }
        for tag in filter.tags {
            sql += " AND EXISTS (SELECT 1 FROM json_each(f.tags) WHERE json_each.value = ?)"
            arguments.append(tag.databaseValue)
        }
        if let visible {
            // Access control: the readable namespaces under the prefix, when not all are.
            let under = collections(under: prefix).map(\.ns)
            let readable = under.filter(visible)
            if readable.isEmpty { return [] }
            if readable.count < under.count {
                sql += " AND f.ns IN (SELECT value FROM json_each(?))"
                var w = JSONWriter(capacity: 64)
                w.value(.array(readable.map(JSON.string)))
                arguments.append(String(decoding: w.bytes, as: UTF8.self).databaseValue)
            }
        }
        sql += " ORDER BY rank, f.ns, f.id LIMIT ?"
        arguments.append(limit.databaseValue)
        let query = sql
        let args = arguments
        return try db.read { db in
            try Row.fetchAll(db.cachedStatement(sql: query), arguments: StatementArguments(args)).map { row in
                let rank: Double = row["rank"]
                return KeywordCandidate(record: try Self.record(row), score: rank == 0 ? 0 : -rank)
            }
        }
    }
}
