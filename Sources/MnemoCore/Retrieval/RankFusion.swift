import MnemoProtocol

/// How a hybrid search merges its arms' lists (each a list of keys with the arm's own
/// score, best first) into one.
///
/// - `minmax` (the default): each arm's scores are scaled to 0...1 over the candidates it
///   returned (min-max), and an item's fused score is the weighted mean over the arms
///   (an arm that did not return it adds 0): ``vectorWeight`` for the vector arm,
///   ``keywordWeight`` for the keyword arm. OpenSearch's hybrid query fuses the same way.
/// - `rrf`: reciprocal rank fusion (Cormack, Clarke and Buettcher, 2009): the sum over the
///   arms of `1 / (k + rank)` with `k = 60` (Elasticsearch's `rank_constant` default).
///   Scores never meet, only ranks.
///
/// Why `minmax` is the default: on the labelled recall set (`benchmarks/recall`, 1,018
/// facts, 365 paraphrased questions) RRF at k = 60 scored below its own vector arm (hit@10
/// 0.756 against 0.912) at any keyword weight tried, because the flat 1/(60 + rank) curve
/// lets a weak keyword arm's middling candidates outrank the vector arm's best; weighted
/// min-max fusion keeps the vector arm's order unless the keyword arm is sure, and beat both
/// arms (weights chosen on half of the questions, checked on the other half).
public enum RankFusion {
    /// The fusion methods.
    public enum Method: String, Sendable, CaseIterable {
        case minmax
        case rrf

        /// The `fusion` parameter, or ``minmax`` when absent.
        /// - Throws: `-32602` naming `field` for another name.
        public static func parse(_ raw: String?, field: String = "fusion") throws(WireError) -> Method {
            guard let raw else { return .minmax }
            guard let m = Method(rawValue: raw) else { throw .invalidParams(field, "must be minmax or rrf, not \"\(raw)\"") }
            return m
        }
    }

    /// RRF's rank constant.
    public static let defaultK = 60
    /// The vector arm's weight in `minmax` fusion.
    public static let vectorWeight = 0.8
    /// The keyword arm's weight in `minmax` fusion.
    public static let keywordWeight = 0.2

    /// How many candidates each arm contributes for a fused top `k`: max(50, 4k).
    public static func armDepth(for k: Int) -> Int { max(50, 4 * k) }

    /// One fused item: its key, fused score, and its rank (1-based) in each arm, nil
    /// where that arm did not return it.
    public struct Fused<Key: Hashable & Comparable>: Equatable {
        /// The item.
        public var key: Key
        /// The fused score (higher is better).
        public var score: Double
        /// Rank in each arm (same order as the arms given), 1-based.
        public var ranks: [Int?]
    }

    /// Fuses a vector arm and a keyword arm (keys with the arm's score, best first; a key
    /// at most once per arm) with `method`; the best `limit`. Ties (equal fused scores) go
    /// to the item with the better best rank, then to the smaller key, so the order never
    /// depends on hashing.
    /// - Complexity: O(n log n) in the number of distinct keys.
    public static func fuse<Key: Hashable & Comparable>(vector: [(key: Key, score: Double)], keyword: [(key: Key, score: Double)],
                                                        method: Method, limit: Int) -> [Fused<Key>] {
        switch method {
        case .rrf:
            return fuse([vector.map(\.key), keyword.map(\.key)], k: defaultK, limit: limit)
        case .minmax:
            return merge([vector, keyword], limit: limit) { arm, i, list in
                let lo = list.last?.score ?? 0, hi = list.first?.score ?? 0
                // One candidate, or all equal: each is the arm's best.
                let scaled = hi > lo ? (list[i].score - lo) / (hi - lo) : 1
                return (arm == 0 ? vectorWeight : keywordWeight) * scaled
            }
        }
    }

    /// Reciprocal rank fusion of `arms` (each a list of keys, best first).
    /// - Complexity: O(n log n) in the number of distinct keys.
    public static func fuse<Key: Hashable & Comparable>(_ arms: [[Key]], k: Int = defaultK, limit: Int) -> [Fused<Key>] {
        merge(arms.map { $0.map { (key: $0, score: 0.0) } }, limit: limit) { _, i, _ in 1 / Double(k + i + 1) }
    }

    /// Sums `contribution(arm, index, list)` per key over the arms and sorts.
    private static func merge<Key: Hashable & Comparable>(
        _ arms: [[(key: Key, score: Double)]], limit: Int,
        contribution: (Int, Int, [(key: Key, score: Double)]) -> Double
    ) -> [Fused<Key>] {
        var index: [Key: Int] = [:]
        var out: [Fused<Key>] = []
        for (a, arm) in arms.enumerated() {
            for (i, item) in arm.enumerated() {
                let slot: Int
                if let s = index[item.key] {
                    slot = s
                } else {
                    slot = out.count
                    index[item.key] = slot
                    out.append(Fused(key: item.key, score: 0, ranks: [Int?](repeating: nil, count: arms.count)))
                }
                guard out[slot].ranks[a] == nil else { continue }
                out[slot].ranks[a] = i + 1
                out[slot].score += contribution(a, i, arm)
            }
        }
        out.sort { x, y in
            if x.score != y.score { return x.score > y.score }
            let bx = x.ranks.compactMap { $0 }.min() ?? .max, by = y.ranks.compactMap { $0 }.min() ?? .max
            if bx != by { return bx < by }
            return x.key < y.key
        }
        return Array(out.prefix(max(0, limit)))
    }
}
