import Dispatch
import Foundation
import Logging
import MnemoProtocol
import Synchronization

/// Working memory and coordination: a TTL-scoped hash map of JSON values in namespaces,
/// with per-key versions, compare-and-set and transactions; claims with leases and
/// fencing tokens; idempotent results; task state machines; inboxes.
///
/// One lock guards it all: each operation is a short critical section run on the
/// caller's thread (no hop to another executor), which makes every operation
/// linearizable and keeps `wm.get` close to the cost of a hash lookup. Every change is
/// journaled (unless volatile) before it is applied; see ``Journal``.
public final class WorkingMemory: Sendable {
    let state = Mutex(WorkingState())
    let limits: Limits
    let time: any TimeSource
    /// The journal; nil in `volatile` mode and on a cluster node.
    public let journal: Journal?
    /// The cluster's change feed, on a cluster node (then there is no journal).
    public let cluster: ClusterLog?
    /// Set when a cluster write's outcome is unknown: the state is rebuilt from the feed
    /// before working memory is served again.
    let resyncNeeded = Atomic<Bool>(false)
    /// Writes waiting for this cluster node's next transaction (group commit).
    let writes = WriteQueue()
    /// The revision of the cluster's latest snapshot this node knows of.
    let lastSnapshotRev = Atomic<Int64>(0)
    /// The SQLite tiers this cluster node replicates through the feed (set once at start).
    let tiers = Mutex<[any ReplicatedTier]>([])
    let logger: Logger
    /// Callbacks waiting for a claim to end (`claim.acquire`, `leader.campaign` with
    /// `wait_ms`), a barrier generation or a proposal round to end, by id.
    let waiters = Mutex<(next: UInt64, byKey: [WaitKey: [UInt64: @Sendable () -> Void]])>((1, [:]))
    /// Change listeners (watches), called with the lock held, in revision order.
    let observers = Mutex<[@Sendable ([WatchEvent]) -> Void]>([])
    /// Whether a snapshot is being written.
    let snapshotting = Atomic<Bool>(false)
    /// How long results and inbox entries are kept.
    let resultRetentionMs: Int64
    let inboxRetentionMs: Int64
    /// Per-principal quotas (`working_bytes`).
    let quotas: QuotaBook

    /// An empty, memory-only store (volatile mode), e.g. for tests.
    public init(limits: Limits, time: any TimeSource, logger: Logger = Logger(label: "mnemo.working"),
                resultRetentionMs: Int64 = 7 * 86_400_000, inboxRetentionMs: Int64 = 7 * 86_400_000,
                quotas: QuotaBook = QuotaBook()) {
        self.limits = limits
        self.quotas = quotas
        self.time = time
        self.journal = nil
        self.cluster = nil
        self.logger = logger
        self.resultRetentionMs = resultRetentionMs
        self.inboxRetentionMs = inboxRetentionMs
    }

    init(limits: Limits, time: any TimeSource, journal: Journal? = nil, cluster: ClusterLog? = nil, logger: Logger,
         resultRetentionMs: Int64, inboxRetentionMs: Int64, quotas: QuotaBook) {
        self.limits = limits
        self.quotas = quotas
        self.time = time
        self.journal = journal
        self.cluster = cluster
        self.logger = logger
        self.resultRetentionMs = resultRetentionMs
        self.inboxRetentionMs = inboxRetentionMs
    }

    /// Opens a durable store in `dir`, recovering what the journal holds.
    public static func open(dir: String, durability: Durability, limits: Limits, time: any TimeSource,
                            logger: Logger, resultRetentionMs: Int64 = 7 * 86_400_000,
                            inboxRetentionMs: Int64 = 7 * 86_400_000,
                            quotas: QuotaBook = QuotaBook()) throws(StorageError) -> WorkingMemory {
        var recovered = WorkingState()
        var ceiling: Int64 = 0
        let wall = time.nowMs()
        let mono = Int64(time.monotonicNs() / 1_000_000)
        let (journal, recovery) = try Journal.open(dir: dir, mode: durability, logger: logger) { change in
            if case .ceiling(let rev) = change { ceiling = max(ceiling, rev) }
            recovered.apply(change, monoNowMs: mono, wallNowMs: wall)
        }
        // Revisions up to the last durable high-water mark may have been handed out in
        // records a power loss took: resume above them.
        recovered.rev = max(recovered.rev, ceiling)
        // The revision never goes down: not below the snapshot's, whatever was deleted.
        recovered.rev = max(recovered.rev, recovery.snapshotRev)
        let wm = WorkingMemory(limits: limits, time: time, journal: journal, logger: logger,
                               resultRetentionMs: resultRetentionMs, inboxRetentionMs: inboxRetentionMs, quotas: quotas)
        wm.state.withLock { $0 = recovered }
        journal.start()
        logger.info("working memory recovered", metadata: [
            "records": "\(recovery.records)", "logs": "\(recovery.logs)", "keys": "\(recovered.keyCount)",
            "rev": "\(recovered.rev)", "torn_bytes": "\(recovery.tornBytes)",
        ])
        if recovery.logs > 0 { wm.snapshot() }
        return wm
    }

    /// Waits for a snapshot being written, then stops the journal after a final fsync.
    public func close() {
        while snapshotting.load(ordering: .acquiring) { usleep(10_000) }
        journal?.stop()
        cluster?.stop()
    }

    // MARK: committing

    /// Journals then applies a change. Lock held.
    /// - Throws: `UNAVAILABLE` when it cannot be journaled; then nothing is applied.
    func commit(_ s: inout WorkingState, _ change: Change) throws(WireError) {
        if cluster != nil { return try stage(&s, change) }
        if let journal {
            if journal.mode == .normal, change.rev > s.revCeiling { try raiseCeiling(&s, above: change.rev, journal) }
            _ = try journal.append(ChangeCodec.encode(change))
        }
        let listeners = observers.withLock { $0 }
        if listeners.isEmpty {
            s.apply(change, monoNowMs: monoMs(), wallNowMs: time.nowMs())
            return
        }
        s.events.removeAll(keepingCapacity: true)
        s.collecting = true
        s.apply(change, monoNowMs: monoMs(), wallNowMs: time.nowMs())
        s.collecting = false
        for observer in listeners { observer(s.events) }
    }

    /// Revisions are reserved in blocks: one fsynced record per block keeps them strictly
    /// increasing across a power loss in normal mode, at the cost of a gap after one.
    public static let revisionBlock: Int64 = 1 << 20

    func raiseCeiling(_ s: inout WorkingState, above rev: Int64, _ journal: Journal) throws(WireError) {
        let ceiling = rev + Self.revisionBlock
        let lsn = try journal.append(ChangeCodec.encode(.ceiling(rev: ceiling)))
        guard journal.syncThrough(lsn) else { throw .app(.unavailable, "cannot fsync the journal; nothing was applied") }
        s.revCeiling = ceiling
    }

    /// Registers a change listener (called with the store lock held; must be quick).
    public func observe(_ observer: @escaping @Sendable ([WatchEvent]) -> Void) {
        observers.withLock { $0.append(observer) }
    }

    func monoMs() -> Int64 { Int64(time.monotonicNs() / 1_000_000) }

    /// The live item at `ns/key`. An expired one, or one whose lease ended, is removed
    /// first (it takes a revision like any deletion); if that cannot be journaled it stays
    /// in memory but is still not returned.
    func live(_ s: inout WorkingState, _ ns: String, _ key: String, now: Int64) -> WorkingItem? {
        guard let item = s.spaces[ns]?.items[key] else { return nil }
        if let lease = item.lease {
            // A key whose claim ended is gone with it (expiring the claim removes the key).
            guard let claim = liveClaim(&s, ClaimKey(ns: ns, resource: lease.resource)), claim.token == lease.token else {
                if s.spaces[ns]?.items[key] != nil {
                    try? commit(&s, .remove(ns: ns, key: key, rev: s.rev + 1, expired: true))
                }
                return nil
            }
        }
        if item.isLive(at: now) { return item }
        try? commit(&s, .remove(ns: ns, key: key, rev: s.rev + 1, expired: true))
        return nil
    }

    // MARK: expiry

    /// Removes up to `max` expired things (keys, claims, results, inbox entries).
    /// - Returns: how many were removed and whether more are already due.
    /// - Complexity: O(max · log n).
    public func sweepExpired(max: Int) -> (removed: Int, more: Bool) {
        let now = time.nowMs()
        if cluster != nil {
            // On a cluster node a sweep is a write transaction: taken only when something is due.
            let due = state.withLock { $0.expiry.hasDue(now: now) || $0.claimExpiry.hasDue(now: monoMs()) }
            guard due else { return (0, false) }
        }
        return (try? write { s in
            var removed = 0
            let mono = monoMs()
            while removed < max, let e = s.claimExpiry.popDue(now: mono) {
                let ck = ClaimKey(ns: e.ns, resource: e.key)
                guard let claim = s.claims[ck], claim.token == e.version, Int64(claim.expiresMono / 1_000_000) <= mono else {
                    continue
                }
                guard expireClaim(&s, ck) else {
                    s.claimExpiry.insert(e)  // retried at the next sweep
                    return (removed, false)
                }
                removed += 1
            }
            while removed < max, let e = s.expiry.popDue(now: now) {
                switch e.tier {
                case .key:
                    guard let item = s.spaces[e.ns]?.items[e.key], item.version == e.version, item.expiresAt == e.expiresAt
                    else { continue }
                    guard (try? commit(&s, .remove(ns: e.ns, key: e.key, rev: s.rev + 1, expired: true))) != nil else {
                        s.expiry.insert(e)
                        return (removed, false)
                    }
                case .result:
                    guard let r = s.results[ClaimKey(ns: e.ns, resource: e.key)], r.expiresAt <= now else { continue }
                    guard (try? commit(&s, .forgetResult(ns: e.ns, key: e.key, rev: s.rev + 1))) != nil else {
                        s.expiry.insert(e)
                        return (removed, false)
                    }
                case .inbox:
                    guard let entry = s.inboxes[e.ns]?[e.key], entry.expiresAt <= now else { continue }
                    guard (try? commit(&s, .dropEntry(ns: e.ns, id: e.key, rev: s.rev + 1))) != nil else {
                        s.expiry.insert(e)
                        return (removed, false)
                    }
                case .barrier:
                    let ck = ClaimKey(ns: e.ns, resource: e.key)
                    guard let b = s.barriers[ck], b.generation == e.version, b.deadline != 0, b.deadline <= now else { continue }
                    guard breakBarrier(&s, ck, b) else {
                        s.expiry.insert(e)
                        return (removed, false)
                    }
                case .proposal:
                    let ck = ClaimKey(ns: e.ns, resource: e.key)
                    guard let p = s.proposals[ck], p.round == e.version, p.status == .open, p.deadline <= now else { continue }
                    guard expireProposal(&s, ck, p) else {
                        s.expiry.insert(e)
                        return (removed, false)
                    }
                case .claim:
                    continue
                }
                removed += 1
            }
            return (removed, s.expiry.hasDue(now: now) || s.claimExpiry.hasDue(now: mono))
        }) ?? (0, false)
    }

    // MARK: snapshots

    /// Writes a snapshot if the journal grew past `thresholdBytes` since the last one.
    /// The file is written on a thread of its own (one snapshot at a time), so the caller
    /// (the sweeper's task) is not blocked for the seconds a large state takes to write.
    public func snapshotIfNeeded(thresholdBytes: Int) {
        if cluster != nil { return clusterSnapshotIfNeeded() }
        guard let journal, journal.bytesSinceSnapshot >= thresholdBytes else { return }
        guard snapshotting.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return }
        Threads.start("mnemo-snapshot") { [self] in
            snapshot()
            snapshotting.store(false, ordering: .releasing)
        }
    }

    /// Writes a snapshot of the current state and drops the logs it replaces. The state is
    /// captured and the log rotated under the lock (a consistent cut). The capture shares
    /// storage with the live state, so the first writes after it copy the namespace or
    /// table they touch (copy-on-write): a pause proportional to that table's size.
    public func snapshot() {
        guard let journal else { return }
        let captured: (UInt64, WorkingState)? = state.withLock { s in
            do {
                return (try journal.rotate(), s)
            } catch {
                logger.error("cannot rotate journal for a snapshot", metadata: ["error": "\(error)"])
                return nil
            }
        }
        guard let (gen, snap) = captured else { return }
        do {
            // In `normal` mode the snapshot carries the fsynced revision ceiling, not just the
            // state's revision: the ceiling's record is in a log the snapshot replaces, and
            // the new log may lose its first second to a power loss.
            try journal.writeSnapshot(gen: gen, rev: max(snap.rev, snap.revCeiling), changes: snap.asChanges())
            logger.info("snapshot written", metadata: ["gen": "\(gen)", "rev": "\(snap.rev)", "keys": "\(snap.keyCount)"])
        } catch {
            logger.error("snapshot failed; the journal still holds everything", metadata: ["error": "\(error)"])
        }
    }

    // MARK: sizes

    /// The current global revision.
    public var revision: Int64 { state.withLock { $0.rev } }

    /// Sizes for `admin.stats`.
    public struct Stats: Sendable {
        /// Keys held (expired ones not yet swept included).
        public var keys: Int
        /// Namespaces with at least one key.
        public var namespaces: Int
        /// Bytes charged against the budget.
        public var bytes: Int
        /// Keys removed by expiry so far.
        public var expired: Int
        /// Live claims.
        public var claims: Int
        /// Tasks known.
        public var tasks: Int
        /// Results stored.
        public var results: Int
        /// Inbox entries.
        public var inboxEntries: Int
    }

    /// Current sizes.
    /// Bytes of working memory charged to each principal (see ``Quota``).
    public var bytesByPrincipal: [String: Int] { state.withLock { $0.byPrincipal } }

    public var stats: Stats {
        state.withLock {
            Stats(keys: $0.keyCount, namespaces: $0.spaces.count, bytes: $0.bytes, expired: $0.expiredTotal,
                  claims: $0.claims.count, tasks: $0.tasks.count, results: $0.results.count,
                  inboxEntries: $0.inboxes.values.reduce(0) { $0 + $1.count })
        }
    }
}

extension WorkingState {
    /// The changes that rebuild this state from nothing (a snapshot's content).
    func asChanges() -> [Change] {
        var out: [Change] = []
        out.reserveCapacity(keyCount + claims.count + results.count + tasks.count)
        // Claims first, so that leased keys find their claim.
        for (k, c) in claims { out.append(.claim(ns: k.ns, resource: k.resource, c)) }
        for (ns, space) in spaces {
            for (key, item) in space.items { out.append(.put(ns: ns, key: key, item: item)) }
        }
        for (k, r) in results { out.append(.result(ns: k.ns, key: k.resource, r)) }
        for (k, t) in tasks {
            for step in t.history { out.append(.task(ns: k.ns, task: k.resource, step)) }
        }
        for (ns, box) in inboxes {
            for e in box.values.sorted(by: { $0.provenance.rev < $1.provenance.rev }) { out.append(.post(ns: ns, e)) }
        }
        for (k, b) in barriers { out.append(.barrier(ns: k.ns, name: k.resource, b, rev: 0, event: "snapshot")) }
        for (k, p) in proposals { out.append(.proposal(ns: k.ns, name: k.resource, p, rev: 0, event: "snapshot")) }
        return out
    }
}
