import Foundation
import GRDB
import MnemoProtocol

extension EpisodeStore {
    /// The identity the periodic job writes summaries under.
    public static var systemCaller: Caller {
        Caller(agent: "mnemod", principal: "system", uid: getuid(), gid: getgid(), pid: getpid())
    }

    /// What one policy's run did.
    public struct RetentionOutcome: Sendable, Equatable {
        /// The policy.
        public var policy: RetentionPolicy
        /// Sources summarized before pruning.
        public var summarized: Int
        /// Summaries written.
        public var summaries: Int
        /// The prune.
        public var prune: PruneResult
    }

    /// Applies retention policies, as the periodic job does: for each, first summarizes
    /// the records it is about to delete that no summary covers yet (when
    /// `summarizeFirst`), then prunes. Nothing goes without a policy saying so, and what
    /// goes is condensed into summaries first.
    /// - Complexity: that of ``prune(_:dryRun:requestedBy:)`` plus summarizing.
    public func applyRetention(_ policies: [RetentionPolicy]) throws(WireError) -> [RetentionOutcome] {
        let started = time.monotonicNs()
        jobLock.lock()
        defer { jobLock.unlock() }
        var outcomes: [RetentionOutcome] = []
        for policy in policies {
            try check(policy)
            var summarized = 0
            var summaries = 0
            if policy.summarizeFirst {
                let cutoff = policy.maxAgeMs.map { time.nowMs() - $0 } ?? Int64.min
                let doomed = try plan(policy, cutoff: cutoff)
                var start = 0
                while start < doomed.count {
                    let end = min(start + 4096, doomed.count)
                    let list = doomed[start..<end].map(String.init).joined(separator: ",")
                    start = end
                    let records = try store.read { db in
                        try EpisodeRecord.fetchAll(db, """
                            SELECT \(EpisodeRecord.columns) FROM episodes
                            WHERE rev IN (\(list)) AND summarized = 0 AND kind != 'summary' ORDER BY rev
                            """, cached: false)
                    }
                    var byNamespace: [String: [EpisodeRecord]] = [:]
                    for r in records { byNamespace[r.ns, default: []].append(r) }
                    for ns in byNamespace.keys.sorted() {
                        let r = try writeSummaries(ns: ns, sources: byNamespace[ns] ?? [], by: Self.systemCaller)
                        summarized += r.summarized
                        summaries += r.summaries.count
                    }
                }
            }
            let pruned = try pruneLocked(policy, dryRun: false, requestedBy: "retention job")
            outcomes.append(RetentionOutcome(policy: policy, summarized: summarized, summaries: summaries, prune: pruned))
        }
        let ms = Int64((time.monotonicNs() - started) / 1_000_000)
        counters.withLock {
            $0.jobRuns += 1
            $0.lastJobMs = ms
        }
        return outcomes
    }
}
