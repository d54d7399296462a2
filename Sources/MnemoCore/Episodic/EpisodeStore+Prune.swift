import Foundation
import GRDB
import MnemoProtocol

extension EpisodeStore {
    /// The outcome of a prune.
    public struct PruneResult: Sendable, Equatable {
        /// Records deleted (or that would be, in a dry run).
        public var deleted: Int
        /// Records remaining in scope.
        public var kept: Int
        /// The last revision taken, when something was deleted.
        public var rev: Int64?
    }

    /// Deletes what `policy` allows, in chunks (so appends interleave), and records each
    /// deletion (what, why, when, on whose request) in the deletion log. A dry run plans
    /// the same set and deletes nothing.
    /// - Parameter requestedBy: who asked, for the deletion log (`ep.prune by <agent>`,
    ///   `retention job`).
    /// - Throws: -32602 for a policy without max_age_ms and max_count; mapped errors.
    /// - Complexity: O(s log s) for s records in scope (the per-namespace ranking) plus
    ///   O(d log n) for d deletions.
    public func prune(_ policy: RetentionPolicy, dryRun: Bool, requestedBy: String) throws(WireError) -> PruneResult {
        try check(policy)
        jobLock.lock()
        defer { jobLock.unlock() }
        return try pruneLocked(policy, dryRun: dryRun, requestedBy: requestedBy)
    }

    func check(_ policy: RetentionPolicy) throws(WireError) {
        if let ns = policy.ns { try Validate.namespace(ns) }
        guard policy.maxAgeMs != nil || policy.maxCount != nil else {
            throw .invalidParams("policy", "needs max_age_ms and/or max_count")
        }
        if let a = policy.maxAgeMs, a < 1 { throw .invalidParams("policy.max_age_ms", "must be at least 1") }
        if let c = policy.maxCount, c < 0 { throw .invalidParams("policy.max_count", "must not be negative") }
    }

    /// Chunk size of deletions: one commit each.
    static let pruneChunk = 5000

    /// The SQL condition selecting `policy`'s scope, and its arguments.
    static func scope(_ ns: String?) -> (String, [DatabaseValue]) {
        guard let ns else { return ("1", []) }
        return ("(ns = ? OR (ns >= ? AND ns < ?))", [ns.databaseValue, (ns + "/").databaseValue, (ns + "0").databaseValue])
    }

    /// The condition for records the policy may delete at all (columns of `table` when given).
    static func unprotected(_ policy: RetentionPolicy, table: String? = nil) -> String {
        let t = table.map { $0 + "." } ?? ""
        var c = "1"
        if policy.keepPinned { c += " AND \(t)pinned = 0" }
        if policy.keepSummaries { c += " AND \(t)kind != 'summary'" }
        return c
    }

    /// The revisions `policy` would delete now, ascending.
    func plan(_ policy: RetentionPolicy, cutoff: Int64) throws(WireError) -> [Int64] {
        let (scope, scopeArgs) = Self.scope(policy.ns)
        let unprotected = Self.unprotected(policy)
        let sql: String
        var args = scopeArgs
        if let maxCount = policy.maxCount {
            // Rank each namespace's deletable records newest first; beyond maxCount, or
            // older than the cutoff, they go.
            sql = """
                SELECT rev FROM (
                  SELECT rev, at, ROW_NUMBER() OVER (PARTITION BY ns ORDER BY rev DESC) AS rn
                  FROM episodes WHERE \(scope) AND \(unprotected)
                ) WHERE at < ? OR rn > ? ORDER BY rev
                """
            args += [cutoff.databaseValue, maxCount.databaseValue]
        } else {
            sql = "SELECT rev FROM episodes WHERE \(scope) AND \(unprotected) AND at < ? ORDER BY rev"
            args.append(cutoff.databaseValue)
        }
        let arguments = StatementArguments(args)
        return try store.read { db in try Int64.fetchAll(db, sql: sql, arguments: arguments) }
    }

    func pruneLocked(_ policy: RetentionPolicy, dryRun: Bool, requestedBy: String) throws(WireError) -> PruneResult {
        let now = time.nowMs()
        let cutoff = policy.maxAgeMs.map { now - $0 } ?? Int64.min
        let revs = try plan(policy, cutoff: cutoff)
        let (scope, scopeArgs) = Self.scope(policy.ns)
        let countArgs = StatementArguments(scopeArgs)
        let total = try store.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM episodes WHERE \(scope)", arguments: countArgs) ?? 0 }
        if dryRun || revs.isEmpty { return PruneResult(deleted: revs.count, kept: total - revs.count, rev: nil) }

        let unprotected = Self.unprotected(policy)
        let ageReason = "older than max_age_ms=\(policy.maxAgeMs ?? 0) (\(policy.description))"
        let countReason = "beyond max_count=\(policy.maxCount ?? 0) newest (\(policy.description))"
        let time = self.time
        var deleted = 0
        var lastRev: Int64?
        var start = 0
        while start < revs.count {
            let end = min(start + Self.pruneChunk, revs.count)
            let list = revs[start..<end].map(String.init).joined(separator: ",")
            start = end
            let vectors = self.vectors
            let done = try store.write { ctx throws -> (Int, Int64?, [String]) in
                let namespaces = try String.fetchAll(ctx.db, sql: "SELECT DISTINCT ns FROM episodes WHERE rev IN (\(list)) AND \(unprotected)")
                guard !namespaces.isEmpty else { return (0, nil, []) }
                // Their vectors go with them (the delete trigger, same transaction), and
                // from memory once this commits.
                let embedded = try Row.fetchAll(ctx.db, sql: """
                    SELECT e.ns, e.id, v.model, v.dims FROM episodes e JOIN episode_vectors v ON v.rev = e.rev
                    WHERE e.rev IN (\(list)) AND \(Self.unprotected(policy, table: "e"))
                    """).map { (ns: $0[0] as String, id: $0[1] as String, model: $0[2] as String, dims: $0[3] as Int) }
                if !embedded.isEmpty {
                    ctx.afterCommit { for v in embedded { vectors.remove(ns: v.ns, id: v.id, model: v.model, dims: v.dims) } }
                }
                let rev = try ctx.nextRevision()
                try ctx.db.execute(sql: """
                    INSERT INTO episode_deletions (id, ns, kind, rev, at, deleted_at, deleted_rev, reason, requested_by)
                    SELECT id, ns, kind, rev, at, ?, ?, CASE WHEN at < ? THEN ? ELSE ? END, ?
                    FROM episodes WHERE rev IN (\(list)) AND \(unprotected) ORDER BY rev
                    """, arguments: [time.nowMs(), rev, cutoff, ageReason, countReason, requestedBy])
                try ctx.db.execute(sql: "DELETE FROM episodes WHERE rev IN (\(list)) AND \(unprotected)")
                return (ctx.db.changesCount, rev, namespaces)
            }
            deleted += done.0
            if let r = done.1 {
                lastRev = r
                emit(done.2.map { WatchEvent(rev: r, tier: "ep", kind: "prune", ns: $0) })
            }
            counters.withLock {
                $0.records -= done.0
                $0.deletionsLogged += done.0
                $0.pruned += done.0
            }
        }
        return PruneResult(deleted: deleted, kept: total - deleted, rev: lastRev)
    }

    /// One entry of the deletion log.
    public struct Deletion: Sendable, Equatable {
        /// The deleted record's id, namespace, kind, revision and time.
        public var id: String, ns: String, kind: String, rev: Int64, at: Int64
        /// When it was deleted, and the revision of the deletion.
        public var deletedAt: Int64, deletedRev: Int64
        /// Which rule of which policy deleted it.
        public var reason: String
        /// Who asked.
        public var requestedBy: String
    }

    /// The deletion log of a namespace prefix (nil: all), oldest first.
    /// - Complexity: O(k log n).
    public func deletions(ns: String?, limit: Int = 1000) throws(WireError) -> [Deletion] {
        let (scope, scopeArgs) = Self.scope(ns)
        let args = StatementArguments(scopeArgs)
        return try store.read { db in
            try Row.fetchAll(db, sql: """
                SELECT id, ns, kind, rev, at, deleted_at, deleted_rev, reason, requested_by FROM episode_deletions
                WHERE \(scope) ORDER BY seq LIMIT \(limit)
                """, arguments: args).map { r in
                Deletion(id: r[0], ns: r[1], kind: r[2], rev: r[3], at: r[4], deletedAt: r[5], deletedRev: r[6],
                         reason: r[7], requestedBy: r[8])
            }
        }
    }
}
