/// Reciprocal rank fusion (Cormack, Clarke and Buettcher, 2009): each arm ranks its own
/// candidates; an item's fused score is the sum over the arms that found it of
/// `1 / (k + rank)` (ranks from 1). Scores of different arms (cosine, BM25) never meet,
/// only ranks do, so no arm needs calibrating. `k = 60` is the usual constant
/// (Elasticsearch's `rank_constant` default).
public enum RankFusion {
    /// The usual rank constant.
    public static let defaultK = 60

    /// How many candidates each arm contributes for a fused top `k`: max(50, 4k).
    public static func armDepth(for k: Int) -> Int { max(50, 4 * k) }

    /// One fused item: its key, fused score, and its rank (1-based) in each arm, nil
    /// where that arm did not return it.
    public struct Fused<Key: Hashable & Comparable>: Equatable {
        /// The item.
        public var key: Key
        /// Sum of `1 / (k + rank)` over the arms that returned it.
        public var score: Double
        /// Rank in each arm (same order as the arms given), 1-based.
        public var ranks: [Int?]
    }

    /// Fuses `arms` (each a list of keys, best first; a key appears at most once per
    /// arm) into one list, best first. Ties (equal fused scores) go to the item with the
    /// better best rank, then to the smaller key, so the order never depends on hashing.
    /// - Complexity: O(n log n) in the number of distinct keys.
    public static func fuse<Key: Hashable & Comparable>(_ arms: [[Key]], k: Int = defaultK, limit: Int) -> [Fused<Key>] {
        var index: [Key: Int] = [:]
        var out: [Fused<Key>] = []
        for (a, arm) in arms.enumerated() {
            for (i, key) in arm.enumerated() {
                let slot: Int
                if let s = index[key] {
                    slot = s
                } else {
                    slot = out.count
                    index[key] = slot
                    out.append(Fused(key: key, score: 0, ranks: [Int?](repeating: nil, count: arms.count)))
                }
                guard out[slot].ranks[a] == nil else { continue }
                out[slot].ranks[a] = i + 1
                out[slot].score += 1 / Double(k + i + 1)
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
