import MnemoProtocol
import Synchronization

/// One principal's share of the daemon (`quota = { ... }` of a `[[principals]]` entry).
/// A missing field is unlimited (the shared `[limits]` still apply to everyone).
///
/// What counts: bytes of working memory charged to what the principal wrote last (keys,
/// results, inbox entries, task steps, claims), semantic facts and episodic records (and
/// their content + data bytes) whose provenance names it, calls per second (a token bucket
/// holding one second's worth), and connections open at once.
public struct Quota: Sendable, Equatable {
    public var workingBytes: Int?
    public var semanticRecords: Int?
    public var episodicRecords: Int?
    public var episodicBytes: Int?
    public var requestsPerSecond: Int?
    public var connections: Int?

    /// No quota at all.
    public init() {}

    /// Every field: its configuration name (also `quota.NAME` in `LIMIT_EXCEEDED`) and place.
    public static let fields: [(name: String, keyPath: any WritableKeyPath<Quota, Int?> & Sendable)] = [
        ("working_bytes", \.workingBytes), ("semantic_records", \.semanticRecords),
        ("episodic_records", \.episodicRecords), ("episodic_bytes", \.episodicBytes),
        ("requests_per_second", \.requestsPerSecond), ("connections", \.connections),
    ]

    /// Whether no field is set.
    public var isEmpty: Bool { Quota.fields.allSatisfy { self[keyPath: $0.keyPath] == nil } }

    /// The error for going over field `name` (`max`) as principal `principal`: nothing applied.
    public static func exceeded(_ name: String, max: Int, principal: String, _ detail: String) -> WireError {
        .limit("quota.\(name)", max: max, "principal \(principal) is over its quota \(name) = \(max): \(detail); nothing was applied")
    }
}

/// The quotas in force (swapped on reload) and each principal's live meter (connections
/// and request rate). Lookups cost one atomic load when no quota is configured.
public final class QuotaBook: Sendable {
    private let quotas = Mutex<[String: Quota]>([:])
    private let anyQuota = Atomic<Bool>(false)
    private let meters = Mutex<[String: PrincipalMeter]>([:])

    /// Quotas of `principals`.
    public init(_ principals: [Principal] = []) { reload(principals) }

    /// Replaces the quotas; live meters take their new rate and connection limit at once.
    public func reload(_ principals: [Principal]) {
        var next: [String: Quota] = [:]
        for p in principals { if let q = p.quota, !q.isEmpty { next[p.name] = q } }
        quotas.withLock { $0 = next }
        anyQuota.store(!next.isEmpty, ordering: .releasing)
        meters.withLock { all in for (name, m) in all { m.configure(next[name]) } }
    }

    /// `principal`'s quota; nil when it has none.
    public func quota(_ principal: String) -> Quota? {
        guard anyQuota.load(ordering: .acquiring) else { return nil }
        return quotas.withLock { $0[principal] }
    }

    /// The limit of field `keyPath` for `principal`; nil when unlimited.
    public func limit(_ principal: String, _ keyPath: KeyPath<Quota, Int?>) -> Int? {
        quota(principal)?[keyPath: keyPath]
    }

    /// `principal`'s meter (made on first use, kept for the daemon's life).
    public func meter(_ principal: String) -> PrincipalMeter {
        if let m = meters.withLock({ $0[principal] }) { return m }
        let q = quota(principal)
        return meters.withLock { all in
            if let m = all[principal] { return m }
            let m = PrincipalMeter(name: principal)
            m.configure(q)
            all[principal] = m
            return m
        }
    }

    /// Every meter, by principal name.
    public var allMeters: [String: PrincipalMeter] { meters.withLock { $0 } }
}

/// One principal's connections and request rate, shared by all its sessions.
public final class PrincipalMeter: Sendable {
    /// The principal.
    public let name: String
    private struct State {
        var connections = 0
        var maxConnections: Int?
        var rate = 0
        var tokens = 0.0
        var lastNs: UInt64 = 0
        var refused = 0
    }
    private let state = Mutex(State())
    /// Calls per second, 0 for unlimited: read without the lock on every call.
    private let rate = Atomic<Int>(0)

    init(name: String) { self.name = name }

    func configure(_ q: Quota?) {
        state.withLock { s in
            s.maxConnections = q?.connections
            let r = q?.requestsPerSecond ?? 0
            if r != s.rate { s.tokens = Double(r) }
            s.rate = r
            rate.store(r, ordering: .releasing)
        }
    }

    /// Counts a new connection.
    /// - Throws: `LIMIT_EXCEEDED` (`quota.connections`) when the principal has its maximum open.
    public func openConnection() throws(WireError) {
        try state.withLock { s throws(WireError) in
            if let max = s.maxConnections, s.connections >= max {
                s.refused += 1
                throw Quota.exceeded("connections", max: max, principal: name, "\(s.connections) connections are open")
            }
            s.connections += 1
        }
    }

    /// A counted connection closed.
    public func closeConnection() { state.withLock { $0.connections -= 1 } }

    /// Takes one call from the bucket.
    /// - Throws: `LIMIT_EXCEEDED` (`quota.requests_per_second`) when it is empty.
    public func admit(nowNs: UInt64) throws(WireError) {
        guard rate.load(ordering: .relaxed) > 0 else { return }
        try state.withLock { s throws(WireError) in
            guard s.rate > 0 else { return }
            // Loops read their clocks before taking the lock: a call stamped before the last
            // one refills nothing (an unsigned difference would refill everything).
            if nowNs > s.lastNs {
                if s.lastNs != 0 {
                    let elapsed = Double(nowNs - s.lastNs) / 1e9
                    s.tokens = min(Double(s.rate), s.tokens + elapsed * Double(s.rate))
                }
                s.lastNs = nowNs
            }
            guard s.tokens >= 1 else {
                s.refused += 1
                throw Quota.exceeded("requests_per_second", max: s.rate, principal: name, "the call was refused; retry later")
            }
            s.tokens -= 1
        }
    }

    /// Connections open now and calls or connections refused over quota so far.
    public var usage: (connections: Int, refused: Int) { state.withLock { ($0.connections, $0.refused) } }
}
