import MnemoProtocol

/// What a summarizer produces for one group of records.
public struct SummaryDraft: Sendable, Equatable {
    /// The summary's text (indexed like any record's content).
    public var content: String
    /// Structured facts: counts, span, agents, kinds, terms, failures.
    public var data: JSON
}

/// The built-in summarizer: extractive and deterministic (no network, no model). The same
/// records always give the same summary.
///
/// It keeps: the count, time span and revision range; records per agent and per kind;
/// the first and last events; failures and outcomes (by kind, tag or wording), each with
/// its id; and the most frequent terms. Every source stays traceable through the
/// summary's `derived_from`.
public enum BuiltinSummarizer {
    /// Most failures/outcomes quoted.
    static let maxNotable = 10
    /// Most frequent terms listed.
    static let maxTerms = 8
    /// Longest quoted snippet, in characters.
    static let snippetCharacters = 160

    /// Summarizes `records` (any order; they are read in revision order) of namespace `ns`.
    public static func summarize(ns: String, records input: [EpisodeRecord]) -> SummaryDraft {
        let records = input.sorted { $0.rev < $1.rev }
        guard let first = records.first, let last = records.last else {
            return SummaryDraft(content: "No records in \(ns).", data: .object([JSONMember("count", .int(0))]))
        }
        let agents = ranked(records.map(\.provenance.agent))
        let kinds = ranked(records.map(\.kind))
        let notable = records.filter(isNotable)
        let terms = Array(ranked(records.flatMap { words($0.content) }).prefix(maxTerms))
        let from = Timestamp.format(records.map(\.at).min() ?? first.at)
        let until = Timestamp.format(records.map(\.at).max() ?? last.at)

        var lines: [String] = []
        lines.append("\(records.count) record\(records.count == 1 ? "" : "s") in \(ns) from \(from) to \(until) (rev \(first.rev)..\(last.rev)).")
        lines.append("Agents: " + agents.map { "\($0.0) \($0.1)" }.joined(separator: ", ") + ".")
        lines.append("Kinds: " + kinds.map { "\($0.0) \($0.1)" }.joined(separator: ", ") + ".")
        lines.append("First: " + quote(first))
        if records.count > 1 { lines.append("Last: " + quote(last)) }
        if !notable.isEmpty {
            lines.append("Failures and outcomes:")
            for r in notable.prefix(maxNotable) { lines.append("- " + quote(r)) }
            if notable.count > maxNotable { lines.append("- (\(notable.count - maxNotable) more)") }
        }
        if !terms.isEmpty {
            lines.append("Frequent terms: " + terms.map { "\($0.0) \($0.1)" }.joined(separator: ", ") + ".")
        }
        let data: JSON = .object([
            JSONMember("count", .int(records.count)),
            JSONMember("from", .string(from)),
            JSONMember("until", .string(until)),
            JSONMember("first_rev", .int(first.rev)),
            JSONMember("last_rev", .int(last.rev)),
            JSONMember("agents", .object(agents.map { JSONMember($0.0, .int($0.1)) })),
            JSONMember("kinds", .object(kinds.map { JSONMember($0.0, .int($0.1)) })),
            JSONMember("first", .string(first.id)),
            JSONMember("last", .string(last.id)),
            JSONMember("failures_and_outcomes", .array(notable.map { .string($0.id) })),
            JSONMember("terms", .array(terms.map { .string($0.0) })),
            JSONMember("summarizer", "builtin"),
        ])
        return SummaryDraft(content: lines.joined(separator: "\n"), data: data)
    }

    /// Values with their counts, most frequent first, ties in byte order.
    static func ranked(_ values: [String]) -> [(String, Int)] {
        var counts: [String: Int] = [:]
        for v in values { counts[v, default: 0] += 1 }
        return counts.sorted { $0.value != $1.value ? $0.value > $1.value : Array($0.key.utf8).lexicographicallyPrecedes($1.key.utf8) }
            .map { ($0.key, $0.value) }
    }

    /// `[kind] snippet (id)`.
    static func quote(_ r: EpisodeRecord) -> String {
        let flat = r.content.split(whereSeparator: { $0.isNewline }).joined(separator: " ")
        let snippet = flat.count > snippetCharacters ? String(flat.prefix(snippetCharacters)) + "..." : flat
        return "[\(r.kind)] \(snippet) (\(r.id))"
    }

    /// A failure or an outcome: by its kind, a tag, or a word of its content.
    static func isNotable(_ r: EpisodeRecord) -> Bool {
        let markers = ["fail", "error", "outcome", "result", "success", "succeeded", "exception", "crash"]
        let kind = r.kind.lowercased()
        if markers.contains(where: { kind.contains($0) }) { return true }
        if r.tags.contains(where: { tag in markers.contains(where: { tag.lowercased().contains($0) }) }) { return true }
        return words(r.content).contains { w in w.hasPrefix("fail") || w.hasPrefix("error") || w == "exception" || w == "crashed" }
    }

    /// Lower-cased words of at least three characters, without stop words and numbers.
    static func words(_ text: String) -> [String] {
        text.lowercased().split(whereSeparator: { !($0.isLetter || $0.isNumber) }).compactMap { w in
            guard w.count >= 3, !w.allSatisfy(\.isNumber) else { return nil }
            let s = String(w)
            return stopWords.contains(s) ? nil : s
        }
    }

    static let stopWords: Set<String> = [
        "the", "and", "for", "are", "but", "not", "you", "all", "any", "can", "had", "her", "was", "one", "our",
        "out", "has", "have", "him", "his", "how", "its", "may", "new", "now", "old", "see", "two", "who", "did",
        "get", "got", "let", "put", "say", "she", "too", "use", "that", "this", "with", "from", "they", "will",
        "would", "there", "their", "what", "about", "which", "when", "were", "then", "them", "than", "been",
        "into", "some", "could", "should", "also", "after", "before", "while", "where", "each", "because", "over",
    ]
}
