import MnemoProtocol

/// One text's embedding.
public struct Embedding: Sendable, Equatable {
    /// The vector (`dims` long; unit length for the built-in embedders).
    public var vector: [Float]
    /// Whether the text was longer than the model reads and was cut to its first tokens.
    public var truncated: Bool

    /// An embedding.
    public init(vector: [Float], truncated: Bool = false) {
        self.vector = vector
        self.truncated = truncated
    }
}

/// Turns text into a vector when a client sends none.
public protocol Embedder: Sendable {
    /// The model name recorded in each collection the embedder fills.
    var model: String { get }
    /// Vector length.
    var dims: Int { get }
    /// The embeddings of `texts`, in order, computed together (the local model runs them
    /// as one packed batch). All or nothing: one failing text fails the call.
    /// - Throws: `-32602` for a text with nothing to embed (naming `field`); `UNAVAILABLE`
    ///   when the model is missing or an external embedder fails (never a silent switch to
    ///   another model).
    func embed(_ texts: [String], field: String) throws(WireError) -> [Embedding]
}

extension Embedder {
    /// The embedding of one text.
    public func embed(_ text: String) throws(WireError) -> [Float] {
        try embed([text], field: "text")[0].vector
    }
}

/// Embedders that embed one text at a time.
protocol SingleTextEmbedder: Embedder {
    /// The vector of one text.
    func embedOne(_ text: String, field: String) throws(WireError) -> [Float]
}

extension SingleTextEmbedder {
    /// Each text in turn.
    public func embed(_ texts: [String], field: String) throws(WireError) -> [Embedding] {
        var out: [Embedding] = []
        out.reserveCapacity(texts.count)
        for t in texts { out.append(Embedding(vector: try embedOne(t, field: field))) }
        return out
    }
}
