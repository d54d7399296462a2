import Foundation
import Logging
import MnemoProtocol

/// The changes of the write transaction under way on a cluster node, kept until PostgreSQL
/// has committed them: the records sent, and the watch events and waiters released only
/// after the commit.
struct ClusterTransaction {
    var body: [UInt8] = []
    var events: [WatchEvent] = []
    /// The replicated SQLite tiers' writers and the transactions the batch opened on them.
    var tiers: TierWriters?
}

/// One line of a feed row: a working-memory change, or an SQLite tier's changes.
enum FeedEntry {
    case working(Change)
    case sqlite(store: String, Changeset)

    /// The line of an SQLite tier's changes.
    static func line(store: String, _ changes: Changeset) -> [UInt8] {
        var w = JSONWriter(capacity: changes.bytes.count * 4 / 3 + 64)
        w.value(.object([JSONMember("sqlite", .string(store)),
                         JSONMember("changeset", .string(Data(changes.bytes).base64EncodedString()))]))
        return w.bytes
    }
}

extension WorkingMemory {
    /// Opens working memory as a node of a cluster: its state is rebuilt from the change feed
    /// in PostgreSQL; the feed is tailed from ``replicate(_:)`` on (once the SQLite tiers
    /// are open).
    /// - Throws: ``ClusterError`` when PostgreSQL cannot be read or a row cannot be decoded.
    public static func openCluster(log: ClusterLog, limits: Limits, logger: Logger,
                                   resultRetentionMs: Int64 = 7 * 86_400_000, inboxRetentionMs: Int64 = 7 * 86_400_000,
                                   quotas: QuotaBook = QuotaBook()) throws(ClusterError) -> WorkingMemory {
        let wm = WorkingMemory(limits: limits, time: log.clock, cluster: log, logger: logger,
                               resultRetentionMs: resultRetentionMs, inboxRetentionMs: inboxRetentionMs, quotas: quotas)
        do {
            _ = try log.currentRevision()  // sets the clock from the database's
        } catch {
            throw .postgres(PGError(message: error.message, connectionLost: true))
        }
        let conn = try ClusterLog.connect(log.settings)
        try wm.load(conn)
        logger.info("cluster node joined", metadata: ["node": "\(log.settings.node)", "rev": "\(wm.revision)",
                                                      "keys": "\(wm.stats.keys)"])
        return wm
    }

    /// Runs a write: on a single node under the store lock; on a cluster node inside a
    /// PostgreSQL transaction holding the cluster's counter row, on the state caught up to
    /// the last commit, with the database's clock. Its changes are applied locally as they
    /// are made (later steps of the same write see them), committed in PostgreSQL before
    /// the lock is released, and only then shown to watches.
    /// - Throws: what `body` throws (its changes made before the error are committed, as on
    ///   a single node), or `UNAVAILABLE` when PostgreSQL cannot be reached: then nothing
    ///   was acknowledged, and if the commit's outcome is unknown the node resynchronizes
    ///   from the feed before it serves working memory again.
    func write<T>(_ body: (inout WorkingState) throws(WireError) -> T) throws(WireError) -> T {
        guard let cluster else { return try state.withLock { s throws(WireError) in try body(&s) } }
        try checkSynchronized()
        // The body does not outlive this call: the queue drops it before answering.
        return try withoutActuallyEscaping(body) { body throws(WireError) -> T in
            let write = TypedWrite(body)
            if !writes.enqueue(write) {
                write.signal.wait()  // done, or handed the lead
            }
            if !write.finished {
                let batch = writes.takeBatch()
                commitBatch(batch, cluster)
                writes.finish(batch, leader: write)
            }
            if case .success = write.outcome { revisionWaiters() }
            return try write.outcome.get()
        }
    }

    /// Runs a batch of writes in one PostgreSQL transaction (see ``WriteQueue``): each
    /// keeps its own outcome; if the batch cannot be committed, every write in it fails.
    private func commitBatch(_ batch: [QueuedWrite], _ cluster: ClusterLog) {
        let failure: WireError? = cluster.withWriter { box in
            let tx: ClusterLog.Transaction
            do throws(WireError) { tx = try cluster.begin(&box, applied: revision) } catch { return error }
            let (failure, committed) = withTierWriters { writers in
                state.withLock { s -> (WireError?, Bool) in
                    do {
                        try applyFeed(&s, tx.missing, writers)
                        guard s.rev == tx.rev else {
                            throw ClusterError.badRecord(rev: tx.rev, "this node is at revision \(s.rev) after catching up")
                        }
                    } catch {
                        resyncNeeded.store(true, ordering: .relaxed)
                        return (.app(.unavailable, "\(error); this node resynchronizes", [JSONMember("reason", .string("cluster"))]), false)
                    }
                    s.txn = ClusterTransaction(tiers: writers)
                    for write in batch { write.run(&s) }
                    var txn = s.txn ?? ClusterTransaction()
                    s.txn = nil
                    let recorded: [(TierWriters.Open, Changeset)]
                    do throws(ChangesetError) { recorded = try writers.finishRecordings() } catch {
                        // Nothing is committed; the batch's working-memory changes were applied
                        // here, so this state is not to be served.
                        writers.rollback()
                        resyncNeeded.store(true, ordering: .relaxed)
                        return (.app(.unavailable, "\(error); nothing was applied", [JSONMember("reason", .string("cluster"))]), false)
                    }
                    for (open, changes) in recorded {
                        if !txn.body.isEmpty { txn.body.append(UInt8(ascii: "\n")) }
                        txn.body.append(contentsOf: FeedEntry.line(store: open.tier.database.name, changes))
                    }
                    guard !txn.body.isEmpty else {
                        writers.rollback()
                        return (nil, false)
                    }
                    // A row changing SQLite rows without taking a revision (none does today)
                    // still needs one to be applied by the others.
                    if s.rev == tx.rev { s.rev += 1 }
                    do throws(WireError) {
                        try cluster.commit(&box, tx, first: tx.rev + 1, last: s.rev, body: txn.body, keep: !recorded.isEmpty)
                    } catch {
                        // Applied here, perhaps not committed there: this state is not to be served.
                        writers.rollback()
                        resyncNeeded.store(true, ordering: .relaxed)
                        return (error, true)
                    }
                    if !writers.commit(rev: s.rev, logger: logger) { resyncNeeded.store(true, ordering: .relaxed) }
                    notifyObservers(txn.events)
                    return (nil, true)
                }
            }
            if !committed { cluster.rollback(&box, tx) }
            return failure
        }
        if let failure { for write in batch { write.fail(failure) } }
    }

    /// Refuses working-memory calls while this node's state is being rebuilt.
    func checkSynchronized() throws(WireError) {
        if resyncNeeded.load(ordering: .relaxed) {
            throw .app(.unavailable, "this cluster node is resynchronizing its state from PostgreSQL; retry shortly",
                       [JSONMember("reason", .string("cluster"))])
        }
    }

    /// A change made on a cluster node inside ``write(_:)``: recorded for the commit and
    /// applied. Lock held.
    func stage(_ s: inout WorkingState, _ change: Change) throws(WireError) {
        guard s.txn != nil else {
            // Reads never write on a cluster node (an expired key is hidden, and removed by
            // the sweeper's write).
            throw .app(.unavailable, "a cluster node changes state only in a write transaction")
        }
        if !s.txn!.body.isEmpty { s.txn!.body.append(UInt8(ascii: "\n")) }
        s.txn!.body.append(contentsOf: ChangeCodec.encode(change))
        s.events.removeAll(keepingCapacity: true)
        s.collecting = true
        s.apply(change, monoNowMs: monoMs(), wallNowMs: time.nowMs())
        s.collecting = false
        s.txn!.events.append(contentsOf: s.events)
    }

    private func notifyObservers(_ events: [WatchEvent]) {
        guard !events.isEmpty else { return }
        for observer in observers.withLock({ $0 }) { observer(events) }
    }

    // MARK: following the feed

    /// Feed rows applied per step of the tailer.
    static let feedStep = 4096

    /// One step of the tailer: applies the rows after this node's revision, or rebuilds the
    /// whole state when a write's outcome was lost or the rows it needs were trimmed.
    func follow(_ conn: PGConnection) throws(ClusterError) {
        guard let cluster else { return }
        if resyncNeeded.load(ordering: .relaxed) {
            try load(conn)
            logger.warning("cluster node resynchronized from the change feed", metadata: ["rev": "\(revision)"])
            return
        }
        // In steps, so that a node far behind does not hold the store lock for long.
        while true {
            let rows = try ClusterError.wrapping { try cluster.fetch(conn, after: revision, limit: Self.feedStep) }
            guard !rows.isEmpty else { return }
            do {
                try withTierWriters { writers in
                    Result { () throws(ClusterError) in try state.withLock { s throws(ClusterError) in try applyFeed(&s, rows, writers) } }
                }.get()
            } catch {
                resyncNeeded.store(true, ordering: .relaxed)  // e.g. the rows it needed were trimmed
                throw error
            }
            revisionWaiters()
            if rows.count < Self.feedStep { return }
        }
    }

    /// Builds the state from the latest snapshot and the feed after it, and puts it in place
    /// of this node's, under the writer (no write of this node runs on the state replaced).
    func load(_ conn: PGConnection) throws(ClusterError) {
        guard let cluster else { return }
        let fresh = try ClusterError.wrapping {
            let snapshot = try cluster.latestSnapshot(conn)
            let rows = try cluster.fetch(conn, after: snapshot?.rev ?? 0, limit: nil)
            lastSnapshotRev.store(snapshot?.rev ?? 0, ordering: .relaxed)
            return try build(snapshot: snapshot, rows: rows)
        }
        // The SQLite tiers may lack rows whose commit this node lost.
        try catchUpTiers(conn, to: fresh.rev)
        cluster.withWriter { _ in
            state.withLock { $0 = fresh }
            resyncNeeded.store(false, ordering: .relaxed)
        }
        // Whatever was waited on may have changed: every parked call looks again.
        for w in waiters.withLock({ w in defer { w.byKey = [:] }; return w.byKey.values.flatMap(\.values) }) { w() }
    }

    /// Applies feed rows this node has not applied yet, in order, waking watches and the
    /// calls waiting on what they change. Lock held.
    func applyFeed(_ s: inout WorkingState, _ rows: [FeedRow], _ writers: TierWriters) throws(ClusterError) {
        for row in rows where row.rev > s.rev {
            guard row.firstRev == s.rev + 1 else {
                throw .badRecord(rev: row.rev, "it starts at revision \(row.firstRev), this node is at \(s.rev)")
            }
            let entries = try Self.decode(row)
            let listening = !observers.withLock({ $0.isEmpty })
            s.events.removeAll(keepingCapacity: true)
            s.collecting = listening
            for entry in entries {
                switch entry {
                case .working(let change): s.apply(change, monoNowMs: monoMs(), wallNowMs: time.nowMs())
                case .sqlite(let store, let changes): writers.apply(changes, to: store, rev: row.rev)
                }
            }
            s.collecting = false
            s.rev = row.rev
            if listening { notifyObservers(s.events) }
            for case .working(let change) in entries { if let key = Self.waitKey(change) { for w in takeWaiters(key) { w() } } }
        }
    }

    /// The state a snapshot and the feed rows after it build.
    private func build(snapshot: FeedRow?, rows: [FeedRow]) throws(ClusterError) -> WorkingState {
        var fresh = WorkingState()
        if let snapshot {
            for case .working(let change) in try Self.decode(snapshot) { fresh.apply(change, monoNowMs: monoMs(), wallNowMs: time.nowMs()) }
            fresh.rev = snapshot.rev
        }
        for row in rows {
            guard row.firstRev == fresh.rev + 1 else {
                throw .badRecord(rev: row.rev, "it starts at revision \(row.firstRev) after revision \(fresh.rev)")
            }
            for case .working(let change) in try Self.decode(row) { fresh.apply(change, monoNowMs: monoMs(), wallNowMs: time.nowMs()) }
            fresh.rev = row.rev
        }
        return fresh
    }

    // MARK: snapshots

    /// Writes a snapshot of the state into PostgreSQL once the feed grew by
    /// `snapshotEvery` revisions past the latest one (whichever node wrote it), on a thread
    /// of its own; the feed before it, past `feedRetain` revisions, is deleted.
    func clusterSnapshotIfNeeded() {
        guard let cluster, !resyncNeeded.load(ordering: .relaxed),
              revision - lastSnapshotRev.load(ordering: .relaxed) >= cluster.settings.snapshotEvery,
              snapshotting.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged
        else { return }
        Threads.start("mnemo-cl-snap") { [self] in
            defer { snapshotting.store(false, ordering: .releasing) }
            do {
                // Another node may have written one meanwhile.
                let latest = try cluster.latestSnapshotRevision()
                lastSnapshotRev.store(latest, ordering: .relaxed)
                guard revision - latest >= cluster.settings.snapshotEvery else { return }
                // A copy-on-write capture, never of a state holding a write whose commit failed
                // (the flag is set under the same lock).
                guard let snap = state.withLock({ resyncNeeded.load(ordering: .relaxed) ? nil : $0 }) else { return }
                var body: [UInt8] = []
                for change in snap.asChanges() {
                    if !body.isEmpty { body.append(UInt8(ascii: "\n")) }
                    body.append(contentsOf: ChangeCodec.encode(change))
                }
                try cluster.writeSnapshot(rev: snap.rev, body: body)
                lastSnapshotRev.store(snap.rev, ordering: .relaxed)
                logger.info("cluster snapshot written", metadata: ["rev": "\(snap.rev)", "bytes": "\(body.count)"])
            } catch {
                logger.warning("cluster snapshot failed; the feed still holds everything", metadata: ["error": "\(error)"])
            }
        }
    }

    static func decode(_ row: FeedRow) throws(ClusterError) -> [FeedEntry] {
        var out: [FeedEntry] = []
        for line in row.body.split(separator: UInt8(ascii: "\n")) {
            do {
                let json = try JSONParser.parse(line)
                if let store = json["sqlite"]?.stringValue {
                    guard let text = json["changeset"]?.stringValue, let bytes = Data(base64Encoded: text) else {
                        throw ClusterError.badRecord(rev: row.rev, "an SQLite line without its changeset")
                    }
                    out.append(.sqlite(store: store, Changeset(bytes: Array(bytes))))
                } else {
                    out.append(.working(try ChangeCodec.decode(json)))
                }
            } catch let error as ClusterError {
                throw error
            } catch {
                throw .badRecord(rev: row.rev, "\(error)")
            }
        }
        return out
    }

    /// The waiters a replicated change may release (a claim ended, a barrier or proposal
    /// moved): they look again.
    private static func waitKey(_ change: Change) -> WaitKey? {
        switch change {
        case .unclaim(let ns, let resource, _, _, _): return WaitKey(.claim, ns: ns, name: resource)
        case .barrier(let ns, let name, _, _, _): return WaitKey(.barrier, ns: ns, name: name)
        case .proposal(let ns, let name, _, _, _): return WaitKey(.proposal, ns: ns, name: name)
        default: return nil
        }
    }
}
