import MnemoProtocol

/// A tier named in an export (`common#/$defs/export_tier`).
public enum ExportTier: String, CaseIterable, Sendable, Comparable {
    case wm, claim, task, inbox, result, ep, sem, audit

    /// The tiers this daemon exports and imports. Claims are leases (they end with their
    /// holder), and tasks, inboxes, results and the audit log are not exported yet.
    public static let supported: [ExportTier] = [.wm, .ep, .sem]

    /// Contract order.
    public static func < (a: ExportTier, b: ExportTier) -> Bool {
        allCases.firstIndex(of: a) ?? 0 < allCases.firstIndex(of: b) ?? 0
    }
}

/// The export file format: JSONL, a header line then one record per line.
public enum ExportFormat {
    /// `format` of the header line.
    public static let name = "mnemo-export"
    /// `version` of the header line; an importer refuses any other.
    public static let version: Int64 = 1

    /// The header line.
    static func header(rev: Int64, at: Int64, ns: String?, tiers: [ExportTier]) -> [UInt8] {
        var w = JSONWriter(capacity: 160)
        w.raw("{\"format\":")
        w.string(name)
        w.raw(",\"version\":")
        w.int(version)
        w.raw(",\"rev\":")
        w.int(rev)
        w.raw(",\"at\":")
        Timestamp.write(at, to: &w)
        w.raw(",\"ns\":")
        if let ns { w.string(ns) } else { w.raw("null") }
        w.raw(",\"tiers\":")
        w.value(.array(tiers.map { .string($0.rawValue) }))
        w.byte(UInt8(ascii: "}"))
        return w.bytes
    }
}

/// One namespace remapping of an import: `from` and everything below it move to `to`.
public struct NamespaceRemap: Sendable, Equatable {
    /// The prefix in the file.
    public var from: String
    /// The prefix it becomes.
    public var to: String

    /// A remapping (both validated by the caller).
    public init(from: String, to: String) {
        self.from = from
        self.to = to
    }

    /// `ns` under the first rule that covers it (whole segments), or `ns` unchanged.
    static func apply(_ rules: [NamespaceRemap], to ns: String) -> String {
        for r in rules where Validate.covers(r.from, ns) {
            return r.to + String(decoding: ns.utf8.dropFirst(r.from.utf8.count), as: UTF8.self)
        }
        return ns
    }
}

/// Per-tier record counts, in contract order.
public struct TierCounts: Sendable, Equatable {
    /// Count by tier.
    public var byTier: [ExportTier: Int] = [:]

    /// No counts.
    public init() {}

    /// Adds `n` to `tier`.
    public mutating func add(_ tier: ExportTier, _ n: Int = 1) { byTier[tier, default: 0] += n }

    /// The total over all tiers.
    public var total: Int { byTier.values.reduce(0, +) }

    /// The `tier_counts` object.
    public var json: JSON {
        .object(byTier.keys.sorted().map { JSONMember($0.rawValue, .int(byTier[$0] ?? 0)) })
    }
}
