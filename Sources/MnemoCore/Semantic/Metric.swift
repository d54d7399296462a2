/// How a collection scores a stored vector `x` against a query `q`; higher is more similar.
public enum Metric: String, Sendable, CaseIterable {
    /// Cosine similarity, -1...1. Vectors are normalised when stored, so the scan is a dot product.
    case cosine
    /// The raw dot product.
    case dot
    /// Negative Euclidean distance (-|x - q|), so that higher is still closer.
    case l2
}
