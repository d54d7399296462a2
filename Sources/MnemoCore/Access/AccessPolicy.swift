import Crypto
import Foundation
import Synchronization

/// The principals in force, swapped as a whole when the configuration is reloaded
/// (SIGHUP); sessions pick the new grants up on their next call.
public final class AccessControl: Sendable {
    private let state: Mutex<(principals: [Principal], generation: UInt64)>
    private let currentGeneration = Atomic<UInt64>(1)
    /// The principals' quotas and meters (reloaded with them).
    public let quotas: QuotaBook

    /// Access control with `principals`; none: the open default (one local principal).
    public init(principals: [Principal]) {
        state = Mutex((principals, 1))
        quotas = QuotaBook(principals)
    }

    /// Whether no principals are configured (every local peer has every right).
    public var isOpen: Bool { state.withLock { $0.principals.isEmpty } }

    /// Changes with every reload (one atomic load: checked on every call).
    public var generation: UInt64 { currentGeneration.load(ordering: .acquiring) }

    /// Replaces the principals (existing sessions keep their principal's name and get its
    /// new grants; a principal that is gone has none).
    public func reload(_ principals: [Principal]) {
        quotas.reload(principals)
        state.withLock {
            $0.principals = principals
            $0.generation += 1
            currentGeneration.store($0.generation, ordering: .releasing)
        }
    }

    /// The principal a peer authenticates as: the first whose token matches (or, for a
    /// principal without a token, which is given none) and whose uids include the peer's.
    /// - Returns: nil when none matches.
    public func authenticate(token: String?, uid: UInt32) -> Principal? {
        let principals = state.withLock { $0.principals }
        guard !principals.isEmpty else { return .local }
        let digest = token.map { Array(SHA256.hash(data: Data($0.utf8))) }
        for p in principals {
            if let uids = p.uids, !uids.contains(uid) { continue }
            switch (p.tokenSHA256, digest) {
            case (nil, nil): return p
            case (let want?, let got?) where Self.equal(want, got): return p
            default: continue
            }
        }
        return nil
    }

    /// `name`'s grants bound to `agent`, and the generation they belong to.
    public func grants(principal name: String, agent: String) -> (grants: [Grant], generation: UInt64) {
        state.withLock { s in
            let p = s.principals.isEmpty ? Principal.local : s.principals.first { $0.name == name }
            return ((p?.grants ?? []).map { $0.bound(to: agent) }, s.generation)
        }
    }

    /// `a` if it belongs to the current generation, else `principal`'s grants bound to
    /// `agent` afresh (after a reload). One atomic load when nothing changed.
    public func current(_ a: Authorization, principal: String, agent: String) -> Authorization {
        guard a.generation != generation else { return a }
        let g = grants(principal: principal, agent: agent)
        return Authorization(grants: g.grants, generation: g.generation)
    }

    /// Compares digests in time independent of where they differ.
    static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var diff: UInt8 = 0
        for i in a.indices { diff |= a[i] ^ b[i] }
        return diff == 0
    }
}

/// A session's effective grants.
public struct Authorization: Sendable {
    /// The grants, `{agent}` bound.
    public var grants: [Grant]
    /// Which reload they come from.
    public var generation: UInt64
    /// Every namespace allowed everything (the open default): checks are skipped.
    public var unrestricted: Bool

    /// Grants.
    public init(grants: [Grant], generation: UInt64) {
        self.grants = grants
        self.generation = generation
        unrestricted = grants.contains { $0.segments.isEmpty && $0.perms == [.read, .write, .admin] }
    }

    /// Whether `perm` is granted on `ns` (and so on its subtree). The root (`""`) is
    /// covered only by `**`.
    public func allows(_ perm: Perms, _ ns: String) -> Bool {
        if unrestricted { return true }
        for g in grants where g.perms.isSuperset(of: perm) {
            if ns.isEmpty ? g.segments.isEmpty : g.covers(ns) { return true }
        }
        return false
    }
}
