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
    /// (tags, agent, since, superseded, validity, expired, and the namespaces in `visible`),
    /// except `min_score`, which is a bar on the vector arm's metric; collections of every
    /// dims and model are searched. With `as_of` or `include_history`, past versions are
    /// matched too (one index covers both tables).
    /// - Throws: `UNAVAILABLE` when the database cannot be read.
    /// - Complexity: proportional to the posting lists of the words and of the prefix,
    ///   plus a sort of the rows matching any word.
    func keywordArm(prefix: String, text: String, limit: Int, filter: SearchFilter,
                    visible: (@Sendable (String) -> Bool)?, now: Int64) throws(WireError) -> [KeywordCandidate] {
        guard limit > 0, let match = FTSQuery.matchAny(text: text, column: "text", prefix: prefix) else { return [] }
        // Access control: the readable namespaces under the prefix, when not all are.
        var readable: String?
        if let visible {
            let under = collections(under: prefix).map(\.ns)
            let names = under.filter(visible)
            if names.isEmpty { return [] }
            if names.count < under.count {
                var w = JSONWriter(capacity: 64)
                w.value(.array(names.map(JSON.string)))
                readable = String(decoding: w.bytes, as: UTF8.self)
            }
        }
        let fields = Self.columns.split(separator: ",").map { "f." + $0.trimmingCharacters(in: .whitespaces) }.joined(separator: ", ")
        var sql = ""
        var arguments: [DatabaseValue] = []
        /// One arm of the union: the matching rows of `table` (live records, or past versions).
        func select(_ table: String, live: Bool) {
            sql += """
                SELECT \(fields), \(live ? 1 : 0) AS live, bm25(facts_fts, 1.0, 0.0) AS rank
                FROM facts_fts JOIN \(table) f ON f.seq = facts_fts.rowid
                WHERE facts_fts MATCH ?
                """
            arguments.append(match.databaseValue)
            // The record is live and not expired (a past version: its live record).
            let record = live ? "f" : "c"
            if !live { sql += " AND EXISTS (SELECT 1 FROM facts c WHERE c.ns = f.ns AND c.id = f.id" }
            sql += " AND (\(record).expires_at IS NULL OR \(record).expires_at > ?)"
            arguments.append(now.databaseValue)
            if !live { sql += ")" }
            if let asOf = filter.asOf {
                sql += " AND " + FactHistory.validAt("f")
                arguments += [asOf.databaseValue, asOf.databaseValue]
                if !live {
                    // Per record, the version believed then: the live one if it held then,
                    // else the newest past version that did.
                    sql += " AND NOT EXISTS (SELECT 1 FROM facts c WHERE c.ns = f.ns AND c.id = f.id AND \(FactHistory.validAt("c")))"
                    sql += " AND f.version = (SELECT max(w.version) FROM fact_versions w WHERE w.ns = f.ns AND w.id = f.id AND \(FactHistory.validAt("w")))"
                    arguments += [asOf.databaseValue, asOf.databaseValue, asOf.databaseValue, asOf.databaseValue]
                }
            } else if !filter.includeSuperseded && !filter.includeHistory {
                sql += " AND f.superseded_by IS NULL AND (f.valid_to IS NULL OR f.valid_to > ?)"
                arguments.append(now.databaseValue)
            }
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
            if let readable {
                sql += " AND f.ns IN (SELECT value FROM json_each(?))"
                arguments.append(readable.databaseValue)
            }
        }
        select("facts", live: true)
        if filter.readsHistory {
            sql += "\nUNION ALL\n"
            select("fact_versions", live: false)
        }
        sql += " ORDER BY rank, ns, id, version LIMIT ?"
        arguments.append(limit.databaseValue)
        let query = sql
        let args = arguments
        return try db.read { db in
            try Row.fetchAll(db.cachedStatement(sql: query), arguments: StatementArguments(args)).map { row in
                let rank: Double = row["rank"]
                var record = try Self.record(row)
                record.isCurrent = row["live"] as Bool
                return KeywordCandidate(record: record, score: rank == 0 ? 0 : -rank)
            }
        }
    }
}
