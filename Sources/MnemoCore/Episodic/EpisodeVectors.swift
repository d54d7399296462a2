import MnemoProtocol
import Synchronization

/// The embeddings of episodic records, held in memory for exact cosine search: one
/// ``VectorCollection`` per namespace and model (the semantic tier's matrix, BLAS scan and
/// top-k, reused as they are), mirroring the `episode_vectors` table.
///
/// One collection per namespace, not one matrix filtered by namespace: a search under a
/// prefix scans only its subtree's vectors, and access control drops whole namespaces
/// before the scan, exactly as `sem.search` does. Each row carries a slim
/// ``SemanticRecord`` (the episode's id, namespace and revision); hits are read back from
/// SQLite in full. Collections start small (16 rows), since episodic namespaces are often
/// many and short (one per workflow run).
///
/// Changed only after the commit that stored or deleted the vectors, on the writer
/// thread, in commit order.
final class EpisodeVectors: Sendable {
    /// A collection's identity: vectors of different models or lengths never share one.
    struct Key: Hashable, Sendable {
        var ns: String
        var model: String
        var dims: Int
    }

    /// One hit of the vector arm.
    struct Hit: Sendable, Equatable {
        var id: String
        var rev: Int64
        var score: Float
    }

    private let collections = Mutex<[Key: VectorCollection]>([:])
    private let total = Atomic<Int>(0)

    /// Rows a new collection holds before it first grows.
    static let initialRows = 16

    /// Vectors held.
    var count: Int { total.load(ordering: .relaxed) }

    /// Adds the vector of record `id` (revision `rev`) in `ns`; `vector` must be unit
    /// length already (``VectorCodec/prepare(_:for:field:)`` with cosine).
    /// - Complexity: O(dims) amortised.
    func put(ns: String, id: String, rev: Int64, model: String, vector: [Float]) {
        let key = Key(ns: ns, model: model, dims: vector.count)
        let c = collections.withLock { all in
            if let c = all[key] { return c }
            let c = VectorCollection(ns: ns, dims: vector.count, metric: .cosine, model: model, initialRows: Self.initialRows)
            all[key] = c
            return c
        }
        let stub = SemanticRecord(id: id, ns: ns, text: "", data: nil, tags: [], confidence: nil, supersededBy: nil,
                                  expiresAt: nil, version: rev,
                                  provenance: Provenance(agent: "", principal: "", uid: 0, pid: 0, at: 0, rev: rev))
        if c.get(id) == nil { total.add(1, ordering: .relaxed) }
        c.put(stub, prepared: vector)
    }

    /// Removes the vector of record `id`, if held.
    /// - Complexity: O(1), plus a compaction (O(rows x dims)) once a quarter of the
    ///   collection's rows are tombstones; an emptied collection is dropped.
    func remove(ns: String, id: String, model: String, dims: Int) {
        let key = Key(ns: ns, model: model, dims: dims)
        guard let c = collections.withLock({ $0[key] }), c.remove(id) else { return }
        total.subtract(1, ordering: .relaxed)
        if c.count == 0 {
            collections.withLock { all in
                if all[key] === c, c.count == 0 { all[key] = nil }
            }
        } else if c.needsCompaction {
            c.compact()
        }
    }

    /// The `k` records under `prefix` (whose namespace `visible` accepts) nearest to
    /// `query` (unit length) among the vectors of `model` and `query.count` dims, best
    /// first (ties by namespace, then id); and the namespaces under the prefix holding
    /// vectors of another model or length, which were not searched (sorted).
    /// - Complexity: O(rows under the prefix x dims) in BLAS, plus O(rows log k).
    /// Whether any vector lies under `prefix` in a namespace `visible` admits.
    /// - Complexity: O(collections).
    func any(under prefix: String, visible: (@Sendable (String) -> Bool)?) -> Bool {
        collections(under: prefix, visible: visible).contains { $0.value.count > 0 }
    }

    /// The collections of the namespaces under `prefix` that `visible` admits.
    private func collections(under prefix: String, visible: (@Sendable (String) -> Bool)?) -> [Key: VectorCollection] {
        collections.withLock { all in
            all.filter { Validate.covers(prefix, $0.key.ns) && (visible?($0.key.ns) ?? true) }
        }
    }

    func search(prefix: String, model: String, query: [Float], k: Int,
                visible: (@Sendable (String) -> Bool)?) -> (hits: [Hit], skipped: [String]) {
        let under = collections(under: prefix, visible: visible)
        var tops = [TopK<SemanticRecord>(k: k)]
        var skipped = Set<String>()
        for (key, c) in under {
            if key.model == model && key.dims == query.count {
                c.search([query], filter: SearchFilter(), now: 0, into: &tops)
            } else {
                skipped.insert(key.ns)
            }
        }
        let hits = tops[0].sorted().map { Hit(id: $0.item.id, rev: $0.item.version, score: $0.score) }
        return (hits, skipped.sorted())
    }
}
