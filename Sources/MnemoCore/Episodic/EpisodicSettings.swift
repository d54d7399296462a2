import MnemoProtocol

/// How episodic memory embeds and searches (`[episodic]` in the configuration).
public struct EpisodicSettings: Sendable, Equatable {
    /// Namespace prefixes (whole segments) whose every record is embedded, whether the
    /// client asks (`embed: true`) or not; `""` covers every namespace.
    public var embedPrefixes: [String] = []
    /// The mode of an `ep.search` that names none.
    public var searchMode: SearchMode = .hybrid

    /// The defaults: nothing embedded unless asked, hybrid search (keyword alone while
    /// nothing under the prefix is embedded).
    public init(embedPrefixes: [String] = [], searchMode: SearchMode = .hybrid) {
        self.embedPrefixes = embedPrefixes
        self.searchMode = searchMode
    }

    /// Whether a policy embeds every record of `ns`.
    /// - Complexity: O(prefixes).
    public func embeds(_ ns: String) -> Bool {
        embedPrefixes.contains { $0.isEmpty || Validate.covers($0, ns) }
    }
}
