import Foundation
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
                settings.embedder = try Self.embedder(e, file: file)
            default:
                throw ConfigError("\(file): unknown key semantic.\(name)")
            }
        }
    }

    /// `kind = "hash"` (default; `dims`) or `kind = "openai"` (`url`, `model`, `dims`,
    /// `api_key_env`, `timeout_ms`).
    static func embedder(_ t: TOMLTable, file: String) throws(ConfigError) -> any Embedder {
        let allowed: Set<String> = ["kind", "dims", "url", "model", "api_key_env", "timeout_ms"]
        if let bad = t.keys.first(where: { !allowed.contains($0) }) { throw ConfigError("\(file): unknown key semantic.embedder.\(bad)") }
        let dims = t["dims"]?.int ?? 384
        guard (1...4096).contains(dims) else { throw ConfigError("\(file): semantic.embedder.dims must be 1...4096") }
        switch t["kind"]?.string ?? "hash" {
        case "hash":
            return HashEmbedder(dims: dims)
        case "openai":
            guard let u = t["url"]?.string, let url = URL(string: u), url.scheme == "http" || url.scheme == "https" else {
                throw ConfigError("\(file): semantic.embedder.url must be an http(s) URL, e.g. http://127.0.0.1:11434/v1/embeddings")
            }
            guard let model = t["model"]?.string, !model.isEmpty else { throw ConfigError("\(file): semantic.embedder.model is required") }
            guard model != SemanticStore.clientModel else { throw ConfigError("\(file): semantic.embedder.model cannot be \"client\"") }
            let timeout = t["timeout_ms"]?.int ?? 10_000
            guard (100...600_000).contains(timeout) else { throw ConfigError("\(file): semantic.embedder.timeout_ms must be 100...600000") }
            let key = t["api_key_env"]?.string.flatMap { ProcessInfo.processInfo.environment[$0] }
            return HTTPEmbedder(url: url, model: model, dims: dims, apiKey: key, timeoutMs: timeout)
        case let other:
            throw ConfigError("\(file): semantic.embedder.kind must be hash or openai, not \(other)")
        }
    }
}
