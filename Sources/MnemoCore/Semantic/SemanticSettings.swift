/// How semantic memory is set up (`[semantic]` in the configuration).
public struct SemanticSettings: Sendable {
    /// Embeds `text` when a client sends no vector (default: ``HashEmbedder``, 384 dims).
    public var embedder: any Embedder = HashEmbedder()
    /// Metric of new collections.
    public var metric: Metric = .cosine
    /// Score at or above which an existing record is reported in `sem.upsert`'s `similar`.
    public var similarScore: Float = 0.95
    /// The mode of a `sem.search` with text and no `mode` (`semantic.search_mode`); a
    /// search with a client vector is always `vector`. Hybrid: it beat both of its arms
    /// on the labelled recall set (`benchmarks/recall`).
    public var defaultMode: SearchMode = .hybrid

    /// The defaults.
    public init() {}
}
