import MnemoCore
import MnemoProtocol
import Synchronization
import Testing

/// A third caller, with the same principal as `alice` but another agent name.
let carol = Caller(agent: "c", principal: "local", uid: 1, gid: 1, pid: 7)

extension WorkingMemory {
    /// Acquires a claim that must be granted; returns its token and wall-clock expiry.
    func grant(_ ns: String, _ resource: String, ttl: Int64, by caller: Caller = alice,
               sourceLocation: SourceLocation = #_sourceLocation) throws -> (token: Int64, expiresAt: Int64) {
        let outcome = try acquire(ns: ns, resource: resource, ttlMs: ttl, by: caller)
        guard case .granted(let token, let expiresAt) = outcome else {
            Issue.record("expected the claim \(ns)/\(resource) to be granted, got \(outcome)", sourceLocation: sourceLocation)
            throw WireError.internal("not granted")
        }
        return (token, expiresAt)
    }

    /// Whether someone holds `ns/resource` (probed by a caller that never holds anything,
    /// with a claim that is released at once if it was granted).
    func isHeld(_ ns: String, _ resource: String) throws -> Bool {
        let probe = Caller(agent: "probe", principal: "probe", uid: 9, gid: 9, pid: 9)
        switch try acquire(ns: ns, resource: resource, ttlMs: 1, by: probe) {
        case .held: return true
        case .granted(let token, _):
            _ = try release(ns: ns, resource: resource, token: token, by: probe)
            return false
        }
    }

    /// A leased write of `value` at `ns/key`.
    @discardableResult
    func putLeased(_ ns: String, _ key: String, _ value: JSON, resource: String, token: Int64,
                   by caller: Caller = alice) throws(WireError) -> WriteResult {
        try set(Write(ns: ns, key: key, value: value.bytes, lease: Lease(resource: resource, token: token)), by: caller)
    }

    /// Moves a task through `states` in order (each step must be allowed).
    func walk(_ ns: String, _ task: String, _ states: [TaskState], by caller: Caller = alice) throws {
        for s in states { _ = try transition(ns: ns, task: task, to: s, from: nil, fence: nil, by: caller) }
    }
}

/// Collects what a store's observers are told, one array per committed change.
final class EventRecorder: Sendable {
    private let batches = Mutex<[[WatchEvent]]>([])

    init(_ wm: WorkingMemory) {
        wm.observe { [self] events in batches.withLock { $0.append(events) } }
    }

    /// Every batch so far, and forgets them.
    func take() -> [[WatchEvent]] { batches.withLock { b in defer { b = [] }; return b } }
}

/// A counter callable from `@Sendable` callbacks.
final class Counter: Sendable {
    private let n = Atomic<Int>(0)
    func bump() { n.add(1, ordering: .relaxed) }
    var value: Int { n.load(ordering: .relaxed) }
}

/// A live claim as `claims(ns:)` reports it (`ClaimInfo` has no public initializer).
struct ListedClaim: Equatable, CustomStringConvertible {
    var resource: String
    var holder: String
    var token: Int64
    var expiresAt: Int64
    var description: String { "\(resource) held by \(holder) token \(token) until \(expiresAt)" }
}

extension WorkingMemory {
    /// `claims(ns:)` as comparable values.
    func claimList(_ ns: String) -> [ListedClaim] {
        claims(ns: ns).map { ListedClaim(resource: $0.resource, holder: $0.holder, token: $0.token, expiresAt: $0.expiresAt) }
    }
}
