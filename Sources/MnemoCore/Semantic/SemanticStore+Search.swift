import MnemoProtocol

extension SemanticStore {
    /// One `sem.search`.
    public struct Query: Sendable {
        /// Namespace prefix (whole segments).
        public var prefix: String
        /// The client's vector; nil: the embedder embeds `text`.
        public var vector: [Float]?
        /// The query text: embedded for the vector arm (unless a vector is given), split
        /// into words for the keyword arm.
        public var text: String?
        /// Hits wanted.
        public var k: Int
        /// What hits must satisfy (both arms alike; `minScore` bars the vector arm only).
        public var filter: SearchFilter
        /// The namespaces the caller may read (access control); nil: all.
        public var visible: (@Sendable (String) -> Bool)?
        /// Which arms run; nil: `vector` with a client vector, the store's
        /// ``SemanticStore/defaultMode`` with text. Only `vector` goes with a client vector.
        public var mode: SearchMode?
        /// How hybrid mode merges the arms.
        public var fusion: RankFusion.Method

        /// A query for the `k` records under `prefix` nearest to `vector` (or `text`).
        public init(prefix: String, vector: [Float]?, text: String?, k: Int, filter: SearchFilter = SearchFilter(),
                    mode: SearchMode? = nil, fusion: RankFusion.Method = .minmax) {
            self.prefix = prefix
            self.vector = vector
            self.text = text
            self.k = k
            self.filter = filter
            self.mode = mode
            self.fusion = fusion
        }
    }

    /// Hits (best first) and the collections under the prefix that did not match.
    public struct SearchResult: Sendable {
        /// Best first (see ``SemanticHit/score``).
        public var hits: [SemanticHit]
        /// Collections the vector arm left out because their dims or model differ from the
        /// query's, sorted (the keyword arm reads every collection; empty in keyword mode).
        public var skipped: [String]
        /// Whether the embedder cut the query text to the model's maximum length.
        public var truncated: Bool
    }

    /// One search (see ``search(_:)-batch``).
    /// - Throws: `-32602` for a bad query; `UNAVAILABLE` when the embedder or the database fails.
    public func search(_ q: Query) throws(WireError) -> SearchResult {
        try search([q])[0].get()
    }

    /// The mode `q` runs in.
    /// - Throws: `-32602` naming `mode` for keyword or hybrid without text, or with a client vector.
    func mode(of q: Query) throws(WireError) -> SearchMode {
        if q.vector != nil {
            guard q.mode == nil || q.mode == .vector else {
                throw .invalidParams("mode", "\(q.mode?.rawValue ?? "") needs text; a client vector searches in vector mode only")
            }
            return .vector
        }
        let mode = q.mode ?? defaultMode
        guard let text = q.text, !text.isEmpty else {
            throw .invalidParams(q.mode == nil ? "text" : "mode", "\(mode.rawValue) search needs text")
        }
        return mode
    }

    /// Several searches at once. Exact nearest-neighbour search in the vector arm:
    /// queries over the same collections with the same filter share one pass over each
    /// matrix (one sgemm per block of rows instead of one sgemv per query), and the texts
    /// of all queries are embedded in one call. The keyword arm (BM25 over FTS5, see
    /// ``keywordArm(prefix:text:limit:filter:visible:now:)``) runs per query. In hybrid
    /// mode each arm returns its best ``RankFusion/armDepth(for:)`` and the lists are fused
    /// as `fusion` says (``RankFusion``: weighted min-max by default, or RRF; ties by best
    /// rank, then namespace and id).
    /// - Complexity: O(rows under the prefixes x dims x queries) for the vector arms, plus
    ///   the keyword arms' posting lists.
    public func search(_ queries: [Query]) -> [Result<SearchResult, WireError>] {
        let now = time.nowMs()
        var results = [Result<SearchResult, WireError>?](repeating: nil, count: queries.count)
        var modes = [SearchMode](repeating: .vector, count: queries.count)
        for (i, q) in queries.enumerated() {
            do throws(WireError) {
                guard q.k >= 1, q.k <= limits.maxSearchK else {
                    throw .limit("max_search_k", max: limits.maxSearchK, "k must be 1...\(limits.maxSearchK)")
                }
                modes[i] = try mode(of: q)
            } catch {
                results[i] = .failure(error)
            }
        }
        // The vector arms: texts embedded together, then one pass per group.
        let embedded = embedTexts(queries.indices.filter { results[$0] == nil && modes[$0] != .keyword && queries[$0].vector == nil },
                                  of: queries.map { $0.text ?? "" }, field: "text")
        var truncated = [Bool](repeating: false, count: queries.count)
        var vectorArm = [[(score: Float, item: SemanticRecord)]](repeating: [], count: queries.count)
        var skipped = [[String]](repeating: [], count: queries.count)
        struct Group {
            var prefix: String
            var model: String
            var dims: Int
            var filter: SearchFilter
            var visible: (@Sendable (String) -> Bool)?
            var members: [(index: Int, vector: [Float], depth: Int)]
        }
        var groups: [Group] = []
        for (i, q) in queries.enumerated() where results[i] == nil && modes[i] != .keyword {
            do throws(WireError) {
                let v: [Float], model: String
                if let vector = q.vector {
                    (v, model) = (vector, Self.clientModel)
                } else {
                    guard let e = embedded[i] else { throw .internal("query \(i) was not embedded") }
                    let embedding = try e.get()
                    (v, model, truncated[i]) = (embedding.vector, embedder.model, embedding.truncated)
                }
                guard v.contains(where: { $0 != 0 }) else {
                    throw .invalidParams(q.vector == nil ? "text" : "vector", "a zero query vector matches nothing")
                }
                let depth = modes[i] == .hybrid ? RankFusion.armDepth(for: q.k) : q.k
                // Queries of one batch share a session, so the same visibility.
                if let g = groups.firstIndex(where: { $0.prefix == q.prefix && $0.model == model && $0.dims == v.count && $0.filter == q.filter }) {
                    groups[g].members.append((i, v, depth))
                } else {
                    groups.append(Group(prefix: q.prefix, model: model, dims: v.count, filter: q.filter, visible: q.visible,
                                        members: [(i, v, depth)]))
                }
            } catch {
                results[i] = .failure(error)
            }
        }
        for g in groups {
            let under = collections(under: g.prefix).filter { g.visible?($0.ns) ?? true }
            let matching = under.filter { $0.dims == g.dims && $0.model == g.model }
            let left = under.filter { $0.dims != g.dims || $0.model != g.model }.map(\.ns).sorted()
            var tops = g.members.map { TopK<SemanticRecord>(k: $0.depth) }
            var failure: WireError?
            for c in matching {
                // Cannot fail: zero vectors were refused above.
                let prepared = g.members.map { (try? VectorCodec.prepare($0.vector, for: c.metric, field: "vector")) ?? $0.vector }
                c.search(prepared, filter: g.filter, now: now, into: &tops)
                if g.filter.readsHistory {
                    do throws(WireError) {
                        try searchHistory(of: c, prepared: prepared, filter: g.filter, now: now, into: &tops)
                    } catch {
                        failure = error
                        break
                    }
                }
            }
            for (j, m) in g.members.enumerated() {
                if let failure {
                    results[m.index] = .failure(failure)
                    continue
                }
                vectorArm[m.index] = tops[j].sorted()
                skipped[m.index] = left
            }
        }
        // The keyword arms, and the answers.
        for (i, q) in queries.enumerated() where results[i] == nil {
            do throws(WireError) {
                var keywordArm: [KeywordCandidate] = []
                if modes[i] != .vector {
                    let depth = modes[i] == .hybrid ? RankFusion.armDepth(for: q.k) : q.k
                    keywordArm = try self.keywordArm(prefix: q.prefix, text: q.text ?? "", limit: depth, filter: q.filter,
                                                     visible: q.visible, now: now)
                }
                let hits = Self.hits(mode: modes[i], fusion: q.fusion, k: q.k, vector: vectorArm[i], keyword: keywordArm)
                results[i] = .success(SearchResult(hits: hits, skipped: skipped[i], truncated: truncated[i]))
            } catch {
                results[i] = .failure(error)
            }
        }
        return results.map { $0 ?? .failure(.internal("search result missing")) }
    }

    /// The past versions of the records of `c` that `filter` admits (`as_of`,
    /// `include_history`), ranked against the same queries into `tops`: read from
    /// `fact_versions` and scored exactly like live rows, in a scratch collection.
    /// - Complexity: O(versions in the namespace x dims x queries), plus reading them.
    private func searchHistory(of c: VectorCollection, prepared: [[Float]], filter: SearchFilter, now: Int64,
                               into tops: inout [TopK<SemanticRecord>]) throws(WireError) {
        let candidates = try db.read { db in
            try FactHistory.candidates(ns: c.ns, asOf: filter.asOf, live: { id in
                c.get(id).flatMap { $0.isExpired(at: now) ? nil : $0 }
            }, in: db)
        }
        guard !candidates.isEmpty else { return }
        let past = VectorCollection(ns: c.ns, dims: c.dims, metric: c.metric, model: c.model, initialRows: candidates.count)
        for v in candidates where v.vector.count == c.dims {
            // A stored vector was checked when written; a zero one is skipped as at load.
            guard let p = try? VectorCodec.prepare(v.vector, for: c.metric, field: "vector") else { continue }
            past.putVersion(v.record, prepared: p)
        }
        past.search(prepared, filter: filter, now: now, into: &tops)
    }

    /// A record version's identity across arms, ordered by namespace, id, then version
    /// (the tie order).
    struct RecordKey: Hashable, Comparable {
        var ns: String
        var id: String
        var version: Int64
        static func < (a: RecordKey, b: RecordKey) -> Bool { (a.ns, a.id, a.version) < (b.ns, b.id, b.version) }
    }

    /// The hits of one query from its arms' candidates (each best first): one arm's list
    /// as it is, or both fused (``RankFusion``).
    /// - Complexity: O(n log n) in the candidates.
    static func hits(mode: SearchMode, fusion: RankFusion.Method, k: Int, vector: [(score: Float, item: SemanticRecord)],
                     keyword: [KeywordCandidate]) -> [SemanticHit] {
        switch mode {
        case .vector:
            return vector.prefix(k).enumerated().map { i, c in
                SemanticHit(record: c.item, score: Double(c.score),
                            match: .init(vector: .init(rank: i + 1, score: Double(c.score))))
            }
        case .keyword:
            return keyword.prefix(k).enumerated().map { i, c in
                SemanticHit(record: c.record, score: c.score, match: .init(keyword: .init(rank: i + 1, score: c.score)))
            }
        case .hybrid:
            var records: [RecordKey: SemanticRecord] = [:]
            let vectorArm = vector.map { c in
                let key = RecordKey(ns: c.item.ns, id: c.item.id, version: c.item.version)
                records[key] = c.item
                return (key: key, score: Double(c.score))
            }
            let keywordArm = keyword.map { c in
                let key = RecordKey(ns: c.record.ns, id: c.record.id, version: c.record.version)
                if records[key] == nil { records[key] = c.record }
                return (key: key, score: c.score)
            }
            return RankFusion.fuse(vector: vectorArm, keyword: keywordArm, method: fusion, limit: k).compactMap { f in
                guard let record = records[f.key] else { return nil }
                let v = f.ranks[0].map { SearchMatch.Arm(rank: $0, score: Double(vector[$0 - 1].score)) }
                let kw = f.ranks[1].map { SearchMatch.Arm(rank: $0, score: keyword[$0 - 1].score) }
                return SemanticHit(record: record, score: f.score, match: .init(vector: v, keyword: kw, fused: f.score))
            }
        }
    }

    /// The embeddings of the texts at `indices` of `texts`, computed in one call of the
    /// embedder (one packed batch for the built-in encoder), keyed by index. When that call is
    /// refused with -32602 (a text with nothing to embed), each text is embedded alone so
    /// that the error lands on its own item; any other failure (`UNAVAILABLE`) fails them all.
    /// - Complexity: one embedder call (n on a -32602 refusal).
    func embedTexts(_ indices: [Int], of texts: [String], field: String) -> [Int: Result<Embedding, WireError>] {
        guard !indices.isEmpty else { return [:] }
        var out: [Int: Result<Embedding, WireError>] = [:]
        do throws(WireError) {
            let all = try embedder.embed(indices.map { texts[$0] }, field: field)
            guard all.count == indices.count else {
                throw .app(.unavailable, "embedder \(embedder.model) returned \(all.count) embeddings for \(indices.count) texts")
            }
            for (i, e) in zip(indices, all) { out[i] = .success(e) }
        } catch let error where error.code == -32602 && indices.count > 1 {
            for i in indices {
                do throws(WireError) {
                    guard let one = try embedder.embed([texts[i]], field: field).first else {
                        throw .app(.unavailable, "embedder \(embedder.model) returned no embedding")
                    }
                    out[i] = .success(one)
                } catch {
                    out[i] = .failure(error)
                }
            }
        } catch {
            for i in indices { out[i] = .failure(error) }
        }
        return out
    }
}
