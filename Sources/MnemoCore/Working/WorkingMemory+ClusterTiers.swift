import Foundation
import GRDB
import Logging
import MnemoProtocol
import Synchronization

/// The episodic and semantic tiers on a cluster node.
///
/// Each node keeps its own SQLite databases (and the vector matrices and keyword indexes
/// they feed), as a single node does; PostgreSQL's feed is their state of record. A write
/// to them is a cluster write like any other: it runs in the node's next cluster
/// transaction, holding the counter row, on databases caught up to the last commit, takes
/// its revisions from the feed, and the SQLite transaction it runs in is recorded as a
/// changeset (``Changeset``), sent in the same feed row as the batch's working-memory
/// changes, committed in PostgreSQL, and only then committed in SQLite. Every other node
/// applies the changeset to its own databases, in feed order, and its tier re-derives
/// its indexes and memory from it (``ReplicatedTier``).
///
/// Each database stores the last feed revision applied to it (`mnemo_meta.cluster_rev`,
/// in the same transaction as the changes), so a restarted node, or one whose write's
/// outcome was lost, applies exactly the rows after it. Feed rows holding SQLite changes
/// are kept (`keep`) when the feed is trimmed: they are these tiers' state of record.
///
/// Locks, always in this order: the node's PostgreSQL writer, the SQLite writers, the
/// working-memory state.
extension WorkingMemory: SQLiteWriteRouter {
    /// Makes `tiers` part of this cluster node: their databases are caught up from the
    /// feed, their writes go through cluster transactions, and the feed is tailed.
    /// - Throws: ``ClusterError`` when a database holds records that are not from the
    ///   feed, or the feed cannot be read.
    func replicate(_ tiers: [any ReplicatedTier]) throws(ClusterError) {
        guard let cluster else { return }
        for tier in tiers where tier.database.damage == nil {
            let store = tier.database
            let known = try ClusterError.wrapping {
                try store.writer.read { db in
                    (try Int64.fetchOne(db, sql: "SELECT value FROM mnemo_meta WHERE key = 'cluster_rev'"),
                     try Int64.fetchOne(db, sql: "SELECT value FROM mnemo_meta WHERE key = 'max_rev'") ?? 0)
                }
            }
            // A database written as a single node (or by another cluster) cannot take a
            // changeset recorded on another database.
            if known.0 == nil && known.1 > 0 {
                throw .badRecord(rev: 0, "\(store.name).sqlite in this node's data directory holds records written outside the cluster: give the node an empty data directory (or move the file away)")
            }
            store.clusterRev.store(known.0 ?? 0, ordering: .relaxed)
        }
        self.tiers.withLock { $0 = tiers }
        let conn = try ClusterLog.connect(cluster.settings)
        try catchUpTiers(conn, to: revision)
        for tier in tiers { tier.database.router.withLock { $0 = self } }
        cluster.startTailing { [self] conn throws(ClusterError) in try follow(conn) }
    }

    /// Runs `body` in `store`'s part of this node's next cluster transaction.
    func write<T: Sendable>(_ store: SQLiteStore, _ body: @escaping @Sendable (WriteContext) throws -> T) throws(WireError) -> T {
        try write { s throws(WireError) -> T in
            let revisions = RevisionCounter(s.rev)
            do {
                guard let open = try s.txn?.tiers?.open(store) else {
                    throw WireError.internal("\(store.name) is not replicated by this cluster node")
                }
                let ctx = WriteContext(db: open.db) { () throws(WireError) -> Int64 in revisions.next() }
                try open.db.execute(sql: "SAVEPOINT mnemo_write")
                do {
                    let value = try body(ctx)
                    try open.db.execute(sql: "RELEASE mnemo_write")
                    open.actions += ctx.actions
                    s.rev = revisions.value
                    return value
                } catch {
                    try open.db.execute(sql: "ROLLBACK TO mnemo_write; RELEASE mnemo_write")
                    throw error
                }
            } catch {
                throw store.wireError(error)
            }
        }
    }

    /// Runs `body` holding the writer connection of every replicated tier.
    func withTierWriters<R>(_ body: (TierWriters) -> R) -> R {
        let tiers = self.tiers.withLock { $0 }
        func nest(_ i: Int, _ held: [(any ReplicatedTier, Database)]) -> R {
            guard i < tiers.count else { return body(TierWriters(held)) }
            return tiers[i].database.writer.writeWithoutTransaction { db in nest(i + 1, held + [(tiers[i], db)]) }
        }
        return nest(0, [])
    }

    /// Applies the SQLite changes of feed rows after `tiers`' revisions, up to `rev`
    /// (rows kept by the feed's trimming), under the writer.
    func catchUpTiers(_ conn: PGConnection, to rev: Int64) throws(ClusterError) {
        guard let cluster else { return }
        let tiers = self.tiers.withLock { $0 }
        guard let from = tiers.filter({ $0.database.damage == nil }).map({ $0.database.clusterRev.load(ordering: .relaxed) }).min(),
              from < rev else { return }
        var after = from
        while after < rev {
            let rows = try ClusterError.wrapping { try cluster.fetchKept(conn, after: after, upTo: rev, limit: Self.feedStep) }
            guard let last = rows.last else { return }
            var changes: [(rev: Int64, store: String, Changeset)] = []
            for row in rows {
                for case .sqlite(let store, let c) in try Self.decode(row) { changes.append((row.rev, store, c)) }
            }
            cluster.withWriter { _ in
                withTierWriters { writers in
                    for c in changes { writers.apply(c.2, to: c.store, rev: c.rev) }
                }
            }
            after = last.rev
        }
    }
}

/// The writer connections of a node's replicated tiers, held for one cluster transaction
/// or one step of the feed, and the SQLite transactions opened on them by the writes of
/// a batch. Used by one thread at a time, under the working-memory state's lock.
final class TierWriters: @unchecked Sendable {
    /// A tier's transaction in the batch under way, recording its changes.
    final class Open {
        let tier: any ReplicatedTier
        let db: Database
        let recording: Changeset.Recording
        /// What its writes do once committed (in-memory mirrors).
        var actions: [() -> Void] = []

        init(_ tier: any ReplicatedTier, _ db: Database) throws {
            self.tier = tier
            self.db = db
            try db.execute(sql: "BEGIN IMMEDIATE")
            do {
                recording = try Changeset.Recording(db, excluding: type(of: tier).derivedTables + ["mnemo_meta"])
            } catch {
                try? db.execute(sql: "ROLLBACK")
                throw error
            }
        }
    }

    private let held: [(tier: any ReplicatedTier, db: Database)]
    private(set) var open: [Open] = []

    init(_ held: [(any ReplicatedTier, Database)]) { self.held = held.map { (tier: $0.0, db: $0.1) } }

    /// `store`'s transaction in this batch, begun at its first write; nil when it is not replicated.
    func open(_ store: SQLiteStore) throws -> Open? {
        if let o = open.first(where: { $0.tier.database === store }) { return o }
        guard let h = held.first(where: { $0.tier.database === store }) else { return nil }
        let o = try Open(h.tier, h.db)
        open.append(o)
        return o
    }

    /// Ends the recordings: each tier's changes, as feed lines (none when nothing changed).
    func finishRecordings() throws(ChangesetError) -> [(Open, Changeset)] {
        var out: [(Open, Changeset)] = []
        for o in open {
            let changes = try o.recording.finish()
            if !changes.isEmpty { out.append((o, changes)) }
        }
        return out
    }

    /// Commits the batch's SQLite transactions, stamped with the feed revision `rev`, and
    /// runs their writes' actions; false when one could not be committed.
    func commit(rev: Int64, logger: Logger) -> Bool {
        var ok = true
        for o in open {
            do {
                try Self.stamp(o.db, rev)
                try o.db.execute(sql: "COMMIT")
                o.tier.database.clusterRev.store(rev, ordering: .relaxed)
                for action in o.actions { action() }
            } catch {
                logger.error("cannot commit a cluster write in SQLite; this node resynchronizes",
                             metadata: ["store": "\(o.tier.database.name)", "error": "\(error)"])
                try? o.db.execute(sql: "ROLLBACK")
                ok = false
            }
        }
        open = []
        return ok
    }

    /// Rolls the batch's SQLite transactions back (its cluster transaction was not committed).
    func rollback() {
        for o in open { try? o.db.execute(sql: "ROLLBACK") }
        open = []
    }

    /// Applies another node's changes to the tier of the store named `name`, in a
    /// transaction of their own, unless its database has them already. A database the
    /// changes do not fit has diverged from the cluster: it is marked damaged (its calls
    /// are refused, `CORRUPT`) and the node goes on.
    func apply(_ changes: Changeset, to name: String, rev: Int64) {
        guard let h = held.first(where: { $0.tier.database.name == name }) else { return }
        let store = h.tier.database
        guard store.damage == nil, rev > store.clusterRev.load(ordering: .relaxed) else { return }
        var after: () -> Void = {}
        do {
            try h.db.inTransaction {
                try changes.apply(to: h.db)
                after = try h.tier.replicated(try changes.rows(), in: h.db)
                try Self.stamp(h.db, rev)
                return .commit
            }
        } catch {
            store.markDamaged("the cluster's change at revision \(rev) does not apply to this node's copy (\(error)): move \(name).sqlite away and restart the node to rebuild it from the feed")
            return
        }
        store.clusterRev.store(rev, ordering: .relaxed)
        after()
    }

    private static func stamp(_ db: Database, _ rev: Int64) throws {
        try db.execute(sql: "INSERT INTO mnemo_meta VALUES ('cluster_rev', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                       arguments: [rev])
    }
}

/// Revisions handed out to one SQLite write inside a cluster transaction: after the
/// batch's last, kept only if the write succeeds.
private final class RevisionCounter: @unchecked Sendable {
    private(set) var value: Int64
    init(_ value: Int64) { self.value = value }
    func next() -> Int64 {
        value += 1
        return value
    }
}
