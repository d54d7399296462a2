import Foundation
import Logging
import MnemoCore
import TOMLKit

/// `[semantic]` and `[semantic.embedder]`.
struct SemanticConfig: Sendable {
    var settings = SemanticSettings()
    /// OpenBLAS threads per search (0: OpenBLAS's own default, one per core).
    var blasThreads = 0
    /// How often expired records are deleted and tombstones compacted.
    var maintenanceIntervalMs = 10_000

    mutating func apply(_ t: TOMLTable, file: String) throws(ConfigError) {
        for name in t.keys {
            let v = t[name]
            switch name {
            case "metric":
                guard let s = v?.string, let m = Metric(rawValue: s) else {
                    throw ConfigError("\(file): semantic.metric must be one of cosine, dot, l2")
                }
                settings.metric = m
            case "similar_score":
                guard let d = v?.double ?? v?.int.map(Double.init), d.isFinite else {
                    throw ConfigError("\(file): semantic.similar_score must be a number")
                }
                settings.similarScore = Float(d)
            case "search_mode":
                guard let raw = v?.string, let mode = SearchMode(rawValue: raw) else {
                    throw ConfigError("\(file): semantic.search_mode must be one of vector, keyword, hybrid")
                }
                settings.defaultMode = mode
            case "blas_threads":
                guard let n = v?.int, (0...64).contains(n) else { throw ConfigError("\(file): semantic.blas_threads must be 0...64") }
                blasThreads = n
            case "maintenance_interval_ms":
                guard let n = v?.int, (100...3_600_000).contains(n) else {
                    throw ConfigError("\(file): semantic.maintenance_interval_ms must be 100...3600000")
                }
                maintenanceIntervalMs = n
            case "embedder":
                guard let e = v?.table else { throw ConfigError("\(file): semantic.embedder must be a table") }
                embedderSpec = try Self.embedder(e, file: file)
            default:
                throw ConfigError("\(file): unknown key semantic.\(name)")
            }
        }
    }

    /// Which embedder `[semantic.embedder]` asks for; the local model is loaded by
    /// ``makeEmbedder(modelDir:logger:)`` once the flags are known (and not again on SIGHUP).
    enum EmbedderSpec: Sendable {
        /// `kind = "local"` (the default): a sentence-transformers BERT model directory.
        case local(dir: String?, name: String?, dims: Int?)
        /// `kind = "hash"`: mnemo-hash-v1.
        case hash(dims: Int)
        /// `kind = "openai"`: an OpenAI-compatible endpoint.
        case openai(HTTPEmbedder)
    }

    var embedderSpec = EmbedderSpec.local(dir: nil, name: nil, dims: nil)

    /// `kind = "local"` (default; `model_dir`, `model`, `dims`), `kind = "hash"` (`dims`)
    /// or `kind = "openai"` (`url`, `model`, `dims`, `api_key_env`, `timeout_ms`). A key
    /// of another kind is refused, as is a key of the wrong type.
    static func embedder(_ t: TOMLTable, file: String) throws(ConfigError) -> EmbedderSpec {
        let kind = t["kind"].map { $0.string } ?? "local"
        let keys: [String: Set<String>] = [
            "local": ["kind", "model_dir", "model", "dims"],
            "hash": ["kind", "dims"],
            "openai": ["kind", "dims", "url", "model", "api_key_env", "timeout_ms"],
        ]
        guard let kind, let allowed = keys[kind] else {
            throw ConfigError("\(file): semantic.embedder.kind must be local, hash or openai, not \(t["kind"].map { "\($0)" } ?? "")")
        }
        if let bad = t.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw ConfigError("\(file): semantic.embedder.\(bad) is not a key of kind \(kind) (keys: \(allowed.sorted().joined(separator: ", ")))")
        }
        func string(_ key: String) throws(ConfigError) -> String? {
            guard let v = t[key] else { return nil }
            guard let s = v.string, !s.isEmpty else { throw ConfigError("\(file): semantic.embedder.\(key) must be a non-empty string") }
            return s
        }
        var dims: Int?
        if let v = t["dims"] {
            guard let n = v.int, (1...4096).contains(n) else { throw ConfigError("\(file): semantic.embedder.dims must be an integer 1...4096") }
            dims = n
        }
        switch kind {
        case "local":
            let name = try string("model")
            guard name != SemanticStore.clientModel else { throw ConfigError("\(file): semantic.embedder.model cannot be \"client\"") }
            return .local(dir: try string("model_dir"), name: name, dims: dims)
        case "hash":
            return .hash(dims: dims ?? 384)
        default:
            guard let u = try string("url"), let url = URL(string: u), url.scheme == "http" || url.scheme == "https" else {
                throw ConfigError("\(file): semantic.embedder.url must be an http(s) URL, e.g. http://127.0.0.1:11434/v1/embeddings")
            }
            guard let model = try string("model") else { throw ConfigError("\(file): semantic.embedder.model is required") }
            guard model != SemanticStore.clientModel else { throw ConfigError("\(file): semantic.embedder.model cannot be \"client\"") }
            var timeout = 10_000
            if let v = t["timeout_ms"] {
                guard let n = v.int, (100...600_000).contains(n) else { throw ConfigError("\(file): semantic.embedder.timeout_ms must be 100...600000") }
                timeout = n
            }
            let key = try string("api_key_env").flatMap { ProcessInfo.processInfo.environment[$0] }
            return .openai(HTTPEmbedder(url: url, model: model, dims: dims ?? 384, apiKey: key, timeoutMs: timeout))
        }
    }

    /// The embedder to run with. A local model directory that is absent (no directory, or
    /// none of its files) gives a stand-in answering text calls with `UNAVAILABLE` and the
    /// command that fetches the model (logged now as a warning); one that is there but
    /// broken or does not match `dims` stops the daemon (a ``ConfigError`` naming the file).
    /// - Parameter modelDir: `--model-dir` or `MNEMO_MODEL_DIR`, over the TOML's `model_dir`.
    func makeEmbedder(modelDir override: String?, logger: Logger) throws(ConfigError) -> any Embedder {
        switch embedderSpec {
        case .hash(let dims):
            return HashEmbedder(dims: dims)
        case .openai(let e):
            return e
        case .local(let configured, let name, let dims):
            let dir = override ?? configured ?? LocalEmbedder.defaultModelsDirectory() + "/" + LocalEmbedder.defaultModel
            let model = name ?? LocalEmbedder.modelName(directory: dir)
            let present = LocalEmbedder.requiredFiles.filter { FileManager.default.fileExists(atPath: dir + "/" + $0) }
            if present.isEmpty {
                let reason = "no model files in \(dir); \(LocalEmbedder.fetchHint), or set semantic.embedder.model_dir"
                logger.warning("embedding model missing: text calls of sem.* will answer UNAVAILABLE",
                               metadata: ["model": "\(model)", "model_dir": "\(dir)", "fix": "\(LocalEmbedder.fetchHint)"])
                return MissingModelEmbedder(model: model, dims: dims ?? 384, reason: reason)
            }
            let embedder: LocalEmbedder
            do {
                embedder = try LocalEmbedder(directory: dir, name: name)
            } catch {
                throw ConfigError("embedding model \(model) cannot be loaded: \(error)")
            }
            if let dims, dims != embedder.dims {
                throw ConfigError("semantic.embedder.dims is \(dims) but the model in \(dir) has \(embedder.dims) dimensions")
            }
            logger.info("embedding model loaded", metadata: [
                "model": "\(embedder.model)", "dims": "\(embedder.dims)", "max_tokens": "\(embedder.maxTokens)", "model_dir": "\(dir)",
            ])
            return embedder
        }
    }
}
