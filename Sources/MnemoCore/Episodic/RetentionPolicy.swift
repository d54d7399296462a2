/// What pruning may delete under a namespace prefix: records older than `maxAgeMs`,
/// and/or beyond the newest `maxCount` of each namespace. Protected records (pinned ones
/// when `keepPinned`, summaries when `keepSummaries`) are never deleted and do not count
/// towards `maxCount`.
public struct RetentionPolicy: Sendable, Equatable {
    /// Namespace prefix (whole segments); nil for every namespace.
    public var ns: String?
    /// Records older than this go.
    public var maxAgeMs: Int64?
    /// At most this many (unprotected) records per namespace stay, the newest.
    public var maxCount: Int?
    /// Summaries are kept (default).
    public var keepSummaries: Bool
    /// Pinned records are kept (default; the wire's ep.prune always keeps them).
    public var keepPinned: Bool
    /// The periodic job summarizes what it is about to delete first (default).
    public var summarizeFirst: Bool

    /// A policy.
    public init(ns: String? = nil, maxAgeMs: Int64? = nil, maxCount: Int? = nil, keepSummaries: Bool = true,
                keepPinned: Bool = true, summarizeFirst: Bool = true) {
        self.ns = ns
        self.maxAgeMs = maxAgeMs
        self.maxCount = maxCount
        self.keepSummaries = keepSummaries
        self.keepPinned = keepPinned
        self.summarizeFirst = summarizeFirst
    }

    /// A short description for logs and the deletion log.
    public var description: String {
        var parts = ["ns=\(ns ?? "*")"]
        if let maxAgeMs { parts.append("max_age_ms=\(maxAgeMs)") }
        if let maxCount { parts.append("max_count=\(maxCount)") }
        parts.append("keep_summaries=\(keepSummaries)")
        parts.append("keep_pinned=\(keepPinned)")
        return parts.joined(separator: " ")
    }
}
