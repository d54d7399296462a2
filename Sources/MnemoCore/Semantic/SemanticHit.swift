/// One search hit, with how each arm ranked it.
public struct SemanticHit: Sendable {
    /// The record.
    public var record: SemanticRecord
    /// What the hits are ordered by (higher is better): the cosine (or the collection's
    /// metric) in `vector` mode, -bm25 in `keyword` mode, the fused score (``RankFusion``)
    /// in `hybrid` mode.
    public var score: Double
    /// How the arms that ran found it.
    public var match: SearchMatch

    /// A hit.
    public init(record: SemanticRecord, score: Double, match: SearchMatch) {
        self.record = record
        self.score = score
        self.match = match
    }

}
