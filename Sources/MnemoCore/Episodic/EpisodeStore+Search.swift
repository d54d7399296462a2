import Foundation
import GRDB
import MnemoProtocol

extension EpisodeStore {
    /// A search hit: the record, its score and why it matched.
    public struct Hit: Sendable, Equatable {
        /// The record.
        public var record: EpisodeRecord
        /// The mode's score, higher is better: -bm25 (keyword), cosine (vector) or the
        /// fused score (hybrid, ``RankFusion``).
        public var score: Double
        /// The hit's rank and score in each arm that found it (and the fused score).
        public var match: SearchMatch
    }

    /// What `ep.search` answers.
    public struct SearchResult: Sendable, Equatable {
        /// Best first.
        public var hits: [Hit]
        /// Namespaces under the prefix holding vectors of another model or length than the
        /// embedder's, which the vector arm did not search (sorted; empty in keyword mode).
        public var skipped: [String]
        /// The mode that ran.
        public var mode: SearchMode
    }

    /// Searches the records under the namespace prefix `ns` (whole segments) whose
    /// namespace `visible` accepts (access control; nil: all), best first.
    ///
    /// - `keyword`: FTS5 over the content, any of the words (OR), BM25-ranked (ties newest
    ///   first). The text is plain words; FTS5 syntax in it is treated as words (see
    ///   ``FTSQuery``), so no text is ever a syntax error. The prefix is one token of the
    ///   `nskey` column, ANDed with the words inside the index.
    /// - `vector`: exact cosine between the embedder's embedding of `text` and the records
    ///   embedded with the same model and length (records without a vector are not
    ///   candidates; namespaces with other vectors are named in `skipped`).
    /// - `hybrid`: both arms, each `RankFusion.armDepth(for: limit)` deep, fused by
    ///   ``RankFusion`` (`fusion`: weighted min-max by default, or RRF). A text with
    ///   nothing to embed, or a prefix with no vectors, leaves the vector arm empty.
    ///
    /// `mode` nil is the configured default (``EpisodicSettings/searchMode``).
    /// - Throws: -32602 for a bad namespace, text or limit (and, in vector mode, a text
    ///   with nothing to embed); `UNAVAILABLE` when the embedder is missing or fails.
    /// - Complexity: keyword: the posting lists of the words and the prefix token (plus the
    ///   hidden rows skipped when `visible` is set); vector: O(vectors under the prefix x
    ///   dims) plus one embedding; hybrid: both.
    public func search(ns: String, text: String, limit: Int, mode: SearchMode? = nil, fusion: RankFusion.Method = .minmax,
                       visible: (@Sendable (String) -> Bool)? = nil) throws(WireError) -> SearchResult {
        try Validate.namespace(ns)
        guard !text.isEmpty else { throw .invalidParams("text", "must not be empty") }
        guard text.count <= Limits.maxSearchTextCharacters else {
            throw .invalidParams("text", "longer than \(Limits.maxSearchTextCharacters) characters")
        }
        guard (1...limits.maxListLimit).contains(limit) else {
            throw .invalidParams("limit", "must be between 1 and \(limits.maxListLimit)")
        }
        let mode = mode ?? settings.searchMode
        switch mode {
        case .keyword:
            let arm = try keywordArm(prefix: ns, text: text, depth: limit, visible: visible)
            let hits = arm.enumerated().map { i, h in
                Hit(record: h.record, score: h.score, match: SearchMatch(keyword: .init(rank: i + 1, score: h.score)))
            }
            return SearchResult(hits: hits, skipped: [], mode: mode)
        case .vector:
            let (arm, skipped) = try vectorArm(prefix: ns, text: text, depth: limit, visible: visible, required: true)
            let hits = arm.enumerated().map { i, h in
                Hit(record: h.record, score: h.score, match: SearchMatch(vector: .init(rank: i + 1, score: h.score)))
            }
            return SearchResult(hits: hits, skipped: skipped, mode: mode)
        case .hybrid:
            let depth = RankFusion.armDepth(for: limit)
            let keyword = try keywordArm(prefix: ns, text: text, depth: depth, visible: visible)
            let (vector, skipped) = try vectorArm(prefix: ns, text: text, depth: depth, visible: visible, required: false)
            var records: [Int64: EpisodeRecord] = [:]
            for h in keyword { records[h.record.rev] = h.record }
            for h in vector { records[h.record.rev] = h.record }
            let fused = RankFusion.fuse(vector: vector.map { (key: $0.record.rev, score: $0.score) },
                                        keyword: keyword.map { (key: $0.record.rev, score: $0.score) }, method: fusion, limit: limit)
            let hits = fused.compactMap { f -> Hit? in
                guard let record = records[f.key] else { return nil }
                let v = f.ranks[0].map { SearchMatch.Arm(rank: $0, score: vector[$0 - 1].score) }
                let k = f.ranks[1].map { SearchMatch.Arm(rank: $0, score: keyword[$0 - 1].score) }
                return Hit(record: record, score: f.score, match: SearchMatch(vector: v, keyword: k, fused: f.score))
            }
            return SearchResult(hits: hits, skipped: skipped, mode: mode)
        }
    }

    /// One arm's hit before fusion.
    struct ArmHit {
        var record: EpisodeRecord
        var score: Double
    }

    /// The `depth` best keyword matches (any word) under `prefix`, visible ones only.
    func keywordArm(prefix: String, text: String, depth: Int, visible: (@Sendable (String) -> Bool)?) throws(WireError) -> [ArmHit] {
        guard let match = FTSQuery.matchAny(text: text, column: "content", prefix: prefix) else { return [] }
        let columns = EpisodeRecord.qualifiedColumns("e")
        // The prefix token selects the subtree inside the index; the namespace test on the
        // row only guards against a row indexed under the wrong keys. With access control
        // the hidden rows are skipped as they come (no LIMIT), so `depth` visible ones return.
        let sql = """
            SELECT \(columns), bm25(episodes_fts, 1.0, 0.0) AS rank FROM episodes_fts
            JOIN episodes e ON e.rev = episodes_fts.rowid
            WHERE episodes_fts MATCH ? AND (e.ns = ? OR (e.ns >= ? AND e.ns < ?))
            ORDER BY rank, e.rev DESC\(visible == nil ? " LIMIT ?" : "")
            """
        var args: [DatabaseValue] = [match.databaseValue, prefix.databaseValue, (prefix + "/").databaseValue,
                                     (prefix + "0").databaseValue]
        if visible == nil { args.append(depth.databaseValue) }
        var out: [ArmHit] = []
        // One statement on a raw read connection, rows decoded from the columns
        // (``SQLiteStore/readRows(_:_:_:)``), until `depth` visible ones are found.
        try store.readRows(sql, args) { s in
            let row = StatementColumns(s)
            let record = EpisodeRecord(columns: row)
            if let visible, !visible(record.ns) { return true }
            let rank = row.double(Int32(EpisodeRecord.columnCount))
            out.append(ArmHit(record: record, score: rank == 0 ? 0 : -rank))
            return out.count < depth
        }
        return out
    }

    /// The `depth` records under `prefix` (visible ones) nearest to the embedding of
    /// `text`, and the namespaces skipped for holding other vectors. When not `required`
    /// (hybrid mode), a text with nothing to embed gives no hits instead of -32602, and
    /// when no episode under the prefix has a vector the text is not embedded at all (so
    /// keyword recall of unembedded episodes works without the model).
    func vectorArm(prefix: String, text: String, depth: Int, visible: (@Sendable (String) -> Bool)?,
                   required: Bool) throws(WireError) -> (hits: [ArmHit], skipped: [String]) {
        if !required && !vectors.any(under: prefix, visible: visible) { return ([], []) }
        let query: ContentEmbedding
        do throws(WireError) {
            query = try embed(text, field: "text")
        } catch {
            guard !required, error.code == -32602 else { throw error }
            return ([], [])
        }
        let found = vectors.search(prefix: prefix, model: query.model, query: query.prepared, k: depth, visible: visible)
        guard !found.hits.isEmpty else { return ([], found.skipped) }
        let list = found.hits.map { String($0.rev) }.joined(separator: ",")
        // Read back in full; a record pruned since the scan is left out.
        let records = try store.read { db in
            try EpisodeRecord.fetchAll(db, "SELECT \(EpisodeRecord.columns) FROM episodes WHERE rev IN (\(list))", cached: false)
        }
        var byRev: [Int64: EpisodeRecord] = [:]
        for r in records { byRev[r.rev] = r }
        let hits = found.hits.compactMap { h in byRev[h.rev].map { ArmHit(record: $0, score: Double(h.score)) } }
        return (hits, found.skipped)
    }
}
