import MnemoProtocol

/// Which arms a text search runs: the vector arm (the embedder's nearest neighbours),
/// the keyword arm (FTS5, BM25-ranked) or both fused by reciprocal rank (``RankFusion``).
public enum SearchMode: String, Sendable, CaseIterable {
    case vector
    case keyword
    case hybrid

    /// The `mode` parameter, or `fallback` when absent.
    /// - Throws: `-32602` naming `field` for anything else.
    public static func parse(_ raw: String?, field: String = "mode", fallback: SearchMode) throws(WireError) -> SearchMode {
        guard let raw else { return fallback }
        guard let mode = SearchMode(rawValue: raw) else {
            throw .invalidParams(field, "must be one of vector, keyword, hybrid, not \"\(raw)\"")
        }
        return mode
    }
}
