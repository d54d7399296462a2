/// One search hit, with how each arm ranked it.
public struct SemanticHit: Sendable {
    /// The record.
    public var record: SemanticRecord
    /// What the hits are ordered by (higher is better): the cosine (or the collection's
    /// metric) in `vector` mode, -bm25 in `keyword` mode, the fused reciprocal-rank score
    /// in `hybrid` mode.
    public var score: Double
    /// How the arms that ran found it.
    public var match: Match

    /// A hit.
    public init(record: SemanticRecord, score: Double, match: Match) {
        self.record = record
        self.score = score
        self.match = match
    }

    /// The explanation of a hit: its rank and score in each arm that returned it, and the
    /// fused score in `hybrid` mode.
    public struct Match: Sendable, Equatable {
        /// A rank (1-based, within the arm's candidates) and the arm's own score.
        public struct Arm: Sendable, Equatable {
            /// 1 for the arm's best candidate.
            public var rank: Int
            /// The vector arm: the collection's metric (cosine -1...1). The keyword arm:
            /// -bm25 (higher is better).
            public var score: Double

            /// An arm's ranking of a hit.
            public init(rank: Int, score: Double) {
                self.rank = rank
                self.score = score
            }
        }

        /// Set when the vector arm returned the hit.
        public var vector: Arm?
        /// Set when the keyword arm returned the hit.
        public var keyword: Arm?
        /// The reciprocal-rank fusion score (hybrid mode only).
        public var fused: Double?

        /// An explanation.
        public init(vector: Arm? = nil, keyword: Arm? = nil, fused: Double? = nil) {
            self.vector = vector
            self.keyword = keyword
            self.fused = fused
        }
    }
}
