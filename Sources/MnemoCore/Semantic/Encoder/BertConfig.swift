import MnemoProtocol

/// What a sentence-transformers BERT model directory says about its network and pooling:
/// `config.json`, `1_Pooling/config.json` and `sentence_bert_config.json`.
struct BertConfig: Sendable, Equatable {
    /// How token vectors become one sentence vector.
    enum Pooling: String, Sendable {
        /// The average of the token vectors (all-MiniLM-L6-v2).
        case mean
        /// The `[CLS]` token's vector (BGE).
        case cls
    }

    var hidden: Int
    var layers: Int
    var heads: Int
    var intermediate: Int
    var vocabSize: Int
    var maxPositions: Int
    var typeVocabSize: Int
    var layerNormEps: Float
    var pooling: Pooling
    /// Tokens the model reads, `[CLS]` and `[SEP]` included.
    var maxSequenceLength: Int

    /// Reads and checks the three files of `dir`.
    /// - Throws: ``ModelError`` naming the file: not a BERT model, an activation or
    ///   position embedding other than BERT's, an unknown pooling, inconsistent sizes.
    static func load(dir: String) throws(ModelError) -> BertConfig {
        let path = dir + "/config.json"
        let c = try readJSON(path)
        func int(_ key: String) throws(ModelError) -> Int {
            guard let v = c[key]?.int64Value, v > 0, v < 1 << 24 else { throw ModelError(path, "\(key) is missing or not a positive integer") }
            return Int(v)
        }
        let type = c["model_type"]?.stringValue ?? "missing"
        guard type == "bert" else { throw ModelError(path, "model_type is \(type); only BERT encoders are supported") }
        let act = c["hidden_act"]?.stringValue ?? "gelu"
        guard act == "gelu" else { throw ModelError(path, "hidden_act is \(act); only gelu (erf) is supported") }
        let positions = c["position_embedding_type"]?.stringValue ?? "absolute"
        guard positions == "absolute" else { throw ModelError(path, "position_embedding_type is \(positions); only absolute is supported") }
        var config = BertConfig(
            hidden: try int("hidden_size"), layers: try int("num_hidden_layers"), heads: try int("num_attention_heads"),
            intermediate: try int("intermediate_size"), vocabSize: try int("vocab_size"),
            maxPositions: try int("max_position_embeddings"), typeVocabSize: try int("type_vocab_size"),
            layerNormEps: Float(c["layer_norm_eps"]?.doubleValue ?? 1e-12), pooling: .mean, maxSequenceLength: 512)
        guard config.hidden % config.heads == 0 else {
            throw ModelError(path, "hidden_size \(config.hidden) is not a multiple of num_attention_heads \(config.heads)")
        }
        guard config.layerNormEps > 0, config.layerNormEps.isFinite else { throw ModelError(path, "layer_norm_eps must be positive") }

        let poolingPath = dir + "/1_Pooling/config.json"
        let p = try readJSON(poolingPath)
        let modes = ["pooling_mode_mean_tokens", "pooling_mode_cls_token", "pooling_mode_max_tokens",
                     "pooling_mode_mean_sqrt_len_tokens", "pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken"]
            .filter { p[$0]?.boolValue == true }
        switch modes {
        case ["pooling_mode_mean_tokens"]: config.pooling = .mean
        case ["pooling_mode_cls_token"]: config.pooling = .cls
        default:
            throw ModelError(poolingPath, "pooling \(modes.isEmpty ? "none" : modes.joined(separator: "+")) is not supported; mean or CLS expected")
        }
        if let d = p["word_embedding_dimension"]?.int64Value, Int(d) != config.hidden {
            throw ModelError(poolingPath, "word_embedding_dimension \(d) differs from hidden_size \(config.hidden)")
        }

        let sbertPath = dir + "/sentence_bert_config.json"
        let s = try readJSON(sbertPath)
        if let m = s["max_seq_length"] {
            guard let n = m.int64Value, n >= 2 else { throw ModelError(sbertPath, "max_seq_length must be an integer of at least 2") }
            config.maxSequenceLength = Int(n)
        }
        config.maxSequenceLength = min(config.maxSequenceLength, config.maxPositions)
        return config
    }
}
