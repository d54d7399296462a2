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
    /// Who wrote it, when (the recorded time), derived from what.
    public var provenance: Provenance
    /// Wall time (ms) from which the fact held in the world: given by the client, or the
    /// write time.
    public var validFrom: Int64
    /// Wall time (ms) at which it stopped holding (exclusive); nil while it holds. Closed
    /// by a supersession or by the next version of the record (``closed(at:)``).
    public var validTo: Int64?
    /// Whether this is the record's live version (false for a past version read from its history).
    public var isCurrent = true

    /// A record.
    public init(id: String, ns: String, text: String, data: [UInt8]?, tags: [String], confidence: Double?,
                supersededBy: String?, expiresAt: Int64?, version: Int64, provenance: Provenance,
                validFrom: Int64? = nil, validTo: Int64? = nil) {
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
        self.validFrom = validFrom ?? provenance.at
        self.validTo = validTo
    }

    /// Whether it is past its TTL at wall time `now`.
    public func isExpired(at now: Int64) -> Bool { expiresAt.map { $0 <= now } ?? false }

    /// Whether the fact held at wall time `t`: `valid_from <= t < valid_to`.
    public func isValid(at t: Int64) -> Bool { validFrom <= t && validTo.map { t < $0 } ?? true }

    /// The end of validity once a fact valid from `from` replaces this one (a supersession
    /// or a new version): `from`, or an earlier end it already had; never before its own
    /// start (a replacement valid from before this fact began leaves it an empty interval:
    /// a correction, never believed valid at any time).
    public func closed(at from: Int64) -> Int64 {
        let end = Swift.max(validFrom, from)
        return validTo.map { Swift.min($0, end) } ?? end
    }
}

/// What a search keeps, applied inside the scan (so `k` hits come back whenever `k` match).
public struct SearchFilter: Sendable, Equatable {
    /// The record has all of these tags.
    public var tags: [String] = []
    /// Written by this agent.
    public var agent: String?
    /// Written at or after this wall time (ms).
    public var since: Int64?
    /// Keep superseded records and records whose validity ended.
    public var includeSuperseded = false
    /// Keep only what was valid at this wall time (ms), superseded or not: per record, the
    /// version believed then (see ``SemanticStore/search(_:)-batch``).
    public var asOf: Int64?
    /// Past versions are candidates too (each hit names its version).
    public var includeHistory = false
    /// Drop hits scoring below this (the vector arm's score under the collection's metric;
    /// the keyword arm has no such bar).
    public var minScore: Float?

    /// No filter.
    public init() {}

    /// Whether a record (already known not superseded unless allowed) passes at wall time `now`.
    func keeps(_ r: SemanticRecord, now: Int64) -> Bool {
        if let asOf {
            if !r.isValid(at: asOf) { return false }
        } else if !includeSuperseded && !includeHistory, let end = r.validTo, end <= now {
            return false
        }
        if let agent, r.provenance.agent != agent { return false }
        if let since, r.provenance.at < since { return false }
        for tag in tags where !r.tags.contains(tag) { return false }
        return true
    }

    /// Whether past versions are candidates too (read from `fact_versions`).
    var readsHistory: Bool { includeHistory || asOf != nil }

    /// Whether superseded records are candidates (then validity, or nothing, decides).
    var keepsSuperseded: Bool { includeSuperseded || readsHistory }
}
