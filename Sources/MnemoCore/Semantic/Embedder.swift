import MnemoProtocol

/// Turns text into a vector when a client sends none.
public protocol Embedder: Sendable {
    /// The model name recorded in each collection the embedder fills.
    var model: String { get }
    /// Vector length.
    var dims: Int { get }
    /// The embedding of `text`.
    /// - Throws: `-32602` for text with nothing to embed; `UNAVAILABLE` when an external
    ///   embedder fails (never a silent switch to another model).
    func embed(_ text: String) throws(WireError) -> [Float]
}
