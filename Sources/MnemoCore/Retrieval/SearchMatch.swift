import MnemoProtocol

/// Why a hit of a text search came back: its rank and score in each arm that found it
/// and, in hybrid mode, the fused score. The same shape in every tier that searches
/// (`"match": {"vector": {"rank", "score"}?, "keyword": {"rank", "score"}?, "fused"?}`).
public struct SearchMatch: Sendable, Equatable {
    /// One arm's view of a hit.
    public struct Arm: Sendable, Equatable {
        /// 1-based rank in that arm.
        public var rank: Int
        /// The arm's own score: cosine for the vector arm, -bm25 for the keyword arm.
        public var score: Double

        /// An arm's rank and score.
        public init(rank: Int, score: Double) {
            self.rank = rank
            self.score = score
        }
    }

    /// The vector arm's rank and cosine, when it found the hit.
    public var vector: Arm?
    /// The keyword arm's rank and -bm25, when it found the hit.
    public var keyword: Arm?
    /// The reciprocal-rank-fusion score (hybrid mode only).
    public var fused: Double?

    /// A match.
    public init(vector: Arm? = nil, keyword: Arm? = nil, fused: Double? = nil) {
        self.vector = vector
        self.keyword = keyword
        self.fused = fused
    }

    /// Writes the `match` object (absent arms are left out).
    /// - Complexity: O(1).
    public func write(to w: inout JSONWriter) {
        w.byte(UInt8(ascii: "{"))
        var first = true
        func arm(_ name: String, _ a: Arm?) {
            guard let a else { return }
            if !first { w.byte(UInt8(ascii: ",")) }
            first = false
            w.string(name)
            w.raw(":{\"rank\":")
            w.int(a.rank)
            w.raw(",\"score\":")
            w.double(a.score)
            w.byte(UInt8(ascii: "}"))
        }
        arm("vector", vector)
        arm("keyword", keyword)
        if let fused {
            if !first { w.byte(UInt8(ascii: ",")) }
            w.raw("\"fused\":")
            w.double(fused)
        }
        w.byte(UInt8(ascii: "}"))
    }
}
