import MnemoProtocol

extension SemanticStore {
    /// One `sem.search`.
    public struct Query: Sendable {
        /// Namespace prefix (whole segments).
        public var prefix: String
        /// The client's vector; nil: the embedder embeds `text`.
        public var vector: [Float]?
        public var text: String?
        public var k: Int
        public var filter: SearchFilter
        /// The namespaces the caller may read (access control); nil: all.
        public var visible: (@Sendable (String) -> Bool)?

        /// A query for the `k` records under `prefix` nearest to `vector` (or `text`).
        public init(prefix: String, vector: [Float]?, text: String?, k: Int, filter: SearchFilter = SearchFilter()) {
            self.prefix = prefix
            self.vector = vector
            self.text = text
            self.k = k
            self.filter = filter
        }
    }

    /// Hits by score (best first) and the collections under the prefix that did not match.
    public struct SearchResult: Sendable {
        public var hits: [SemanticHit]
        /// Collections whose dims or model differ from the query's, sorted.
        public var skipped: [String]
    }

    /// Exact nearest-neighbour search (see ``search(_:)-batch``).
    /// - Throws: `-32602` for a bad query; `UNAVAILABLE` when the embedder fails.
    public func search(_ q: Query) throws(WireError) -> SearchResult {
        try search([q])[0].get()
    }

    /// Several searches at once: queries over the same collections with the same filter
    /// share one pass over each matrix (one sgemm per block of rows instead of one sgemv
    /// per query), which reads the vectors from memory once for all of them.
    /// - Complexity: O(rows under the prefixes x dims x queries).
    public func search(_ queries: [Query]) -> [Result<SearchResult, WireError>] {
        let now = time.nowMs()
        var results = [Result<SearchResult, WireError>?](repeating: nil, count: queries.count)
        // Embed, then group queries that scan the same collections the same way.
        struct Group {
            var prefix: String
            var model: String
            var dims: Int
            var filter: SearchFilter
            var visible: (@Sendable (String) -> Bool)?
            var members: [(index: Int, vector: [Float], k: Int)]
        }
        var groups: [Group] = []
        for (i, q) in queries.enumerated() {
            do throws(WireError) {
                guard q.k >= 1, q.k <= limits.maxSearchK else {
                    throw .limit("max_search_k", max: limits.maxSearchK, "k must be 1...\(limits.maxSearchK)")
                }
                let (v, model) = try embedding(q.vector, text: q.text ?? "")
                guard v.contains(where: { $0 != 0 }) else {
                    throw .invalidParams(q.vector == nil ? "text" : "vector", "a zero query vector matches nothing")
                }
                // Queries of one batch share a session, so the same visibility.
                if let g = groups.firstIndex(where: { $0.prefix == q.prefix && $0.model == model && $0.dims == v.count && $0.filter == q.filter }) {
                    groups[g].members.append((i, v, q.k))
                } else {
                    groups.append(Group(prefix: q.prefix, model: model, dims: v.count, filter: q.filter, visible: q.visible,
                                        members: [(i, v, q.k)]))
                }
            } catch {
                results[i] = .failure(error)
            }
        }
        for g in groups {
            let under = collections(under: g.prefix).filter { g.visible?($0.ns) ?? true }
            let matching = under.filter { $0.dims == g.dims && $0.model == g.model }
            let skipped = under.filter { $0.dims != g.dims || $0.model != g.model }.map(\.ns).sorted()
            var tops = g.members.map { TopK<SemanticRecord>(k: $0.k) }
            for c in matching {
                // Cannot fail: zero vectors were refused above.
                let prepared = g.members.map { (try? VectorCodec.prepare($0.vector, for: c.metric, field: "vector")) ?? $0.vector }
                c.search(prepared, filter: g.filter, now: now, into: &tops)
            }
            for (j, m) in g.members.enumerated() {
                results[m.index] = .success(SearchResult(hits: tops[j].sorted().map { SemanticHit(record: $0.item, score: $0.score) },
                                                         skipped: skipped))
            }
        }
        return results.map { $0 ?? .failure(.internal("search result missing")) }
    }
}

