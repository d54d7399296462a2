import MnemoCore
import TOMLKit

/// The `[episodic]` table:
///
/// ```toml
/// [episodic]
/// job_interval_ms = 3600000          # retention job schedule; 0 disables it
/// summarizer_command = ["/usr/local/bin/summarize", "--model", "small"]
/// summarizer_timeout_ms = 10000
/// search_mode = "hybrid"             # ep.search without `mode`: hybrid (default) | keyword | vector
///
/// [[episodic.embed]]                 # one table per prefix whose every record is embedded
/// ns = "wf"                          # prefix; omit for every namespace
///
/// [[episodic.retention]]
/// ns = "wf"                          # prefix; omit for every namespace
/// max_age_ms = 604800000             # and/or max_count
/// max_count = 10000
/// keep_summaries = true
/// keep_pinned = true
/// summarize = true                   # summarize what is about to go, first
/// ```
struct EpisodicConfig: Sendable {
    var jobIntervalMs = 3_600_000
    var summarizerCommand: [String]? = nil
    var summarizerTimeoutMs = 10_000
    var retention: [RetentionPolicy] = []
    /// Embedding policies and the default search mode.
    var settings = EpisodicSettings()

    var summarizer: Summarizer { Summarizer(command: summarizerCommand, timeoutMs: summarizerTimeoutMs) }

    mutating func apply(table: TOMLTable, file: String) throws(ConfigError) {
        for key in table.keys {
            let value = table[key]
            switch key {
            case "job_interval_ms":
                guard let v = value?.int, v == 0 || (1000...86_400_000 * 7).contains(v) else {
                    throw ConfigError("\(file): episodic.job_interval_ms must be 0 (off) or 1000...604800000")
                }
                jobIntervalMs = v
            case "summarizer_command":
                if let s = value?.string, !s.isEmpty {
                    summarizerCommand = [s]
                } else if let a = value?.array {
                    let parts = a.compactMap { $0.string }
                    guard parts.count == a.count, !parts.isEmpty, !parts[0].isEmpty else {
                        throw ConfigError("\(file): episodic.summarizer_command must be a path or an array of strings")
                    }
                    summarizerCommand = parts
                } else {
                    throw ConfigError("\(file): episodic.summarizer_command must be a path or an array of strings")
                }
                if let path = summarizerCommand?.first, !path.hasPrefix("/") {
                    throw ConfigError("\(file): episodic.summarizer_command must start with an absolute path")
                }
            case "summarizer_timeout_ms":
                guard let v = value?.int, (100...600_000).contains(v) else {
                    throw ConfigError("\(file): episodic.summarizer_timeout_ms must be 100...600000")
                }
                summarizerTimeoutMs = v
            case "search_mode":
                guard let name = value?.string, let mode = SearchMode(rawValue: name) else {
                    throw ConfigError("\(file): episodic.search_mode must be one of keyword, vector, hybrid")
                }
                settings.searchMode = mode
            case "embed":
                guard let list = value?.array else { throw ConfigError("\(file): episodic.embed must be an array of tables ([[episodic.embed]])") }
                for (i, item) in list.enumerated() {
                    guard let t = item.table else { throw ConfigError("\(file): episodic.embed[\(i)] must be a table") }
                    settings.embedPrefixes.append(try Self.embedPrefix(t, at: "\(file): episodic.embed[\(i)]"))
                }
            case "retention":
                guard let list = value?.array else { throw ConfigError("\(file): episodic.retention must be an array of tables ([[episodic.retention]])") }
                for (i, item) in list.enumerated() {
                    guard let t = item.table else { throw ConfigError("\(file): episodic.retention[\(i)] must be a table") }
                    retention.append(try Self.policy(t, at: "\(file): episodic.retention[\(i)]"))
                }
            default:
                throw ConfigError("\(file): unknown key episodic.\(key)")
            }
        }
    }

    /// One `[[episodic.embed]]` table: its `ns` prefix ("" when omitted: every namespace).
    static func embedPrefix(_ t: TOMLTable, at place: String) throws(ConfigError) -> String {
        var prefix = ""
        for key in t.keys {
            switch key {
            case "ns":
                guard let ns = t[key]?.string, (try? Validate.namespace(ns)) != nil else {
                    throw ConfigError("\(place).ns must be a namespace prefix such as \"wf/42\"")
                }
                prefix = ns
            default:
                throw ConfigError("\(place): unknown key \(key)")
            }
        }
        return prefix
    }

    static func policy(_ t: TOMLTable, at place: String) throws(ConfigError) -> RetentionPolicy {
        var p = RetentionPolicy()
        for key in t.keys {
            let value = t[key]
            switch key {
            case "ns":
                guard let ns = value?.string, (try? Validate.namespace(ns)) != nil else {
                    throw ConfigError("\(place).ns must be a namespace prefix such as \"wf/42\"")
                }
                p.ns = ns
            case "max_age_ms":
                guard let v = value?.int, v >= 1 else { throw ConfigError("\(place).max_age_ms must be an integer >= 1") }
                p.maxAgeMs = Int64(v)
            case "max_count":
                guard let v = value?.int, v >= 0 else { throw ConfigError("\(place).max_count must be an integer >= 0") }
                p.maxCount = v
            case "keep_summaries":
                guard let v = value?.bool else { throw ConfigError("\(place).keep_summaries must be a boolean") }
                p.keepSummaries = v
            case "keep_pinned":
                guard let v = value?.bool else { throw ConfigError("\(place).keep_pinned must be a boolean") }
                p.keepPinned = v
            case "summarize":
                guard let v = value?.bool else { throw ConfigError("\(place).summarize must be a boolean") }
                p.summarizeFirst = v
            default:
                throw ConfigError("\(place): unknown key \(key)")
            }
        }
        guard p.maxAgeMs != nil || p.maxCount != nil else {
            throw ConfigError("\(place) needs max_age_ms and/or max_count")
        }
        return p
    }
}
