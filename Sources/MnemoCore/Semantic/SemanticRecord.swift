/// A fact or preference in semantic memory (its vector lives in its collection's matrix).
public struct SemanticRecord: Sendable, Equatable {
    /// Unique within its namespace.
    public var id: String
    /// The namespace (= the collection).
    public var ns: String
    /// The text the fact states (what was embedded when no vector was given).
    public var text: String
    /// Structured payload as raw JSON; nil when none was given.
    public var data: [UInt8]?
    /// Tags, in the order given.
    public var tags: [String]
    /// Confidence 0...1; nil when none was given.
    public var confidence: Double?
    /// The record that replaced this one; superseded records are hidden from search by default.
    public var supersededBy: String?
    /// Wall time (ms) after which the record is gone; nil without a TTL.
    public var expiresAt: Int64?
    /// The revision of the record's last write.
    public var version: Int64
    /// Who wrote it, when, derived from what.
    public var provenance: Provenance

    /// A record.
    public init(id: String, ns: String, text: String, data: [UInt8]?, tags: [String], confidence: Double?,
                supersededBy: String?, expiresAt: Int64?, version: Int64, provenance: Provenance) {
        self.id = id
        self.ns = ns
        self.text = text
        self.data = data
        self.tags = tags
        self.confidence = confidence
        self.supersededBy = supersededBy
        self.expiresAt = expiresAt
        self.version = version
        self.provenance = provenance
    }

    /// Whether it is past its TTL at wall time `now`.
    public func isExpired(at now: Int64) -> Bool { expiresAt.map { $0 <= now } ?? false }
}

/// What a search keeps, applied inside the scan (so `k` hits come back whenever `k` match).
public struct SearchFilter: Sendable, Equatable {
    /// The record has all of these tags.
    public var tags: [String] = []
    /// Written by this agent.
    public var agent: String?
    /// Written at or after this wall time (ms).
    public var since: Int64?
    /// Keep superseded records.
    public var includeSuperseded = false
    /// Drop hits scoring below this (the vector arm's score under the collection's metric;
    /// the keyword arm has no such bar).
    public var minScore: Float?

    /// No filter.
    public init() {}

    /// Whether a record (already known not superseded unless allowed) passes.
    func keeps(_ r: SemanticRecord) -> Bool {
        if let agent, r.provenance.agent != agent { return false }
        if let since, r.provenance.at < since { return false }
        for tag in tags where !r.tags.contains(tag) { return false }
        return true
    }

    /// Whether any per-record test is set (the scan skips the record fetch otherwise).
    var isSelective: Bool { agent != nil || since != nil || !tags.isEmpty }
}
