import Foundation
import GRDB
import Logging
import MnemoProtocol
import Synchronization

/// One audited call: a mutation (allowed or failed) or a denial.
public struct AuditEntry: Sendable, Equatable {
    public var id: Int64 = 0
    /// Wall time, ms.
    public var at: Int64
    public var principal: String
    /// nil before `session.hello`.
    public var agent: String?
    public var uid: UInt32
    public var pid: Int32
    public var method: String
    public var ns: String?
    /// The key, resource, task or id the call addressed.
    public var target: String?
    /// false for UNAUTHENTICATED and FORBIDDEN.
    public var allowed: Bool
    /// The application error name the call ended with; nil on success.
    public var error: String?
    /// The revision the call wrote.
    public var rev: Int64?

    /// An entry.
    public init(at: Int64, principal: String, agent: String?, uid: UInt32, pid: Int32, method: String, ns: String?,
                target: String?, allowed: Bool, error: String?, rev: Int64?) {
        self.at = at
        self.principal = principal
        self.agent = agent
        self.uid = uid
        self.pid = pid
        self.method = method
        self.ns = ns
        self.target = target
        self.allowed = allowed
        self.error = error
        self.rev = rev
    }
}

/// The append-only audit log (`audit.sqlite`): every denial, and every mutation when
/// principals are configured (or `[audit] mutations = true`). Without principals every
/// peer is the same trusted local user, and each stored item's provenance already names
/// its writer; recording each write there too would cost a SQLite row per `wm.set`.
///
/// Callers never wait for it: ``record(_:)`` queues the entry (a lock and an append) and
/// a background thread writes what is queued in one transaction, so an event loop pays
/// no SQLite cost. Entries past the queue bound (a writer that cannot keep up, a full
/// disk) are counted in `dropped` and logged, never allowed to grow memory. Entries
/// older than the retention are deleted by the same thread.
public final class AuditLog: Sendable {
    let db: SQLiteStore
    /// On a cluster node, the cluster's log in PostgreSQL, used instead of `db`.
    let cluster: ClusterAudit?
    private let queue = Mutex<(items: [AuditEntry], stopped: Bool)>(([], false))
    private let wake = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)
    /// Entries not written because the queue was full.
    public let dropped = Atomic<Int>(0)
    private let lastDropWarning = Atomic<UInt64>(0)
    let retentionMs: Int64
    /// Whether allowed mutations are recorded (denials always are).
    public let recordsMutations: Bool
    let time: any TimeSource
    let logger: Logger
    /// Most entries waiting to be written.
    static let maxQueued = 100_000

    /// Opens `dir/audit.sqlite` (in memory when volatile).
    public init(dir: String, durability: Durability, retentionMs: Int64, recordsMutations: Bool, time: any TimeSource,
                cluster: ClusterSettings? = nil, logger: Logger) throws(StorageError) {
        self.cluster = cluster.map { ClusterAudit(settings: $0, logger: logger) }
        var m = DatabaseMigrator()
        m.registerMigration("audit_v1") { db in
            try db.execute(sql: """
                CREATE TABLE audit (
                    id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, principal TEXT NOT NULL, agent TEXT,
                    uid INTEGER NOT NULL, pid INTEGER NOT NULL, method TEXT NOT NULL, ns TEXT, target TEXT,
                    allowed INTEGER NOT NULL, error TEXT, rev INTEGER) STRICT;
                CREATE INDEX audit_at ON audit (at);
                """)
        }
        // The log is written in the background and never acknowledges a client's write, so
        // `normal` (WAL, survives a crash of the daemon) is enough in every mode.
        db = try SQLiteStore(dir: dir, name: "audit", durability: durability == .volatile ? .volatile : .normal,
                             migrator: m, logger: logger, nextRevision: { () throws(WireError) in 0 })
        self.retentionMs = retentionMs
        self.recordsMutations = recordsMutations
        self.time = time
        self.logger = logger
        Threads.start("mnemo-audit") { [self] in writeLoop() }
    }

    /// Queues an entry (never blocks on I/O).
    public func record(_ e: AuditEntry) {
        // The writer drains everything queued each time it wakes: only the entry that
        // finds the queue empty needs to wake it (one futex call per batch, not per entry).
        let queued = queue.withLock { q -> (ok: Bool, first: Bool) in
            guard !q.stopped, q.items.count < Self.maxQueued else { return (false, false) }
            q.items.append(e)
            return (true, q.items.count == 1)
        }
        if queued.ok {
            if queued.first { wake.signal() }
        } else {
            dropped.add(1, ordering: .relaxed)
            // At most one warning every 10 s, however fast entries are dropped.
            let now = time.monotonicNs()
            let last = lastDropWarning.load(ordering: .relaxed)
            if now &- last > 10_000_000_000,
               lastDropWarning.compareExchange(expected: last, desired: now, ordering: .relaxed).exchanged {
                logger.warning("audit entries dropped: the audit writer cannot keep up",
                               metadata: ["dropped": "\(dropped.load(ordering: .relaxed))"])
            }
        }
    }

    /// Writes what is queued, then stops.
    public func close() {
        let running = queue.withLock { q in
            defer { q.stopped = true }
            return !q.stopped
        }
        guard running else { return }
        wake.signal()
        finished.wait()
        db.close()
    }

    private func writeLoop() {
        var lastPrune: Int64 = 0
        while true {
            wake.wait()
            let (batch, stopped) = queue.withLock { q in
                let batch = q.items
                q.items.removeAll(keepingCapacity: true)
                return (batch, q.stopped)
            }
            if !batch.isEmpty {
                write(batch)
                // Let the next batch build up: fewer, larger transactions under load.
                usleep(2000)
            }
            let now = time.nowMs()
            if now - lastPrune > 60_000 {
                lastPrune = now
                prune(before: now - retentionMs)
            }
            if stopped && queue.withLock({ $0.items.isEmpty }) {
                finished.signal()
                return
            }
        }
    }

    private func write(_ batch: [AuditEntry]) {
        do throws(WireError) {
            if let cluster { return try cluster.write(batch) }
            try db.write { ctx in
                let st = try ctx.db.cachedStatement(sql: """
                    INSERT INTO audit (at, principal, agent, uid, pid, method, ns, target, allowed, error, rev)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """)
                for e in batch {
                    try st.execute(arguments: [e.at, e.principal, e.agent, Int64(e.uid), Int64(e.pid), e.method, e.ns,
                                               e.target, e.allowed, e.error, e.rev])
                }
            }
        } catch {
            dropped.add(batch.count, ordering: .relaxed)
            logger.error("audit entries lost", metadata: ["count": "\(batch.count)", "error": "\(error.message)"])
        }
    }

    /// Deletes entries older than `cutoff` (the log's own retention).
    func prune(before cutoff: Int64) {
        do throws(WireError) {
            if let cluster { return try cluster.prune(before: cutoff) }
            try db.write { ctx in try ctx.db.execute(sql: "DELETE FROM audit WHERE at < ?", arguments: [cutoff]) }
        } catch {
            logger.warning("audit retention failed", metadata: ["error": "\(error.message)"])
        }
    }

    /// Entries, newest first: under a namespace prefix (whole segments), by agent, at or
    /// after `since`; `visible` hides namespaces the caller may not administer. On a
    /// cluster node: every node's entries.
    /// - Complexity: O(entries scanned) from the newest.
    public func query(ns: String?, agent: String?, since: Int64?, limit: Int,
                      visible: (@Sendable (String?) -> Bool)?) throws(WireError) -> [AuditEntry] {
        if let cluster { return try cluster.query(ns: ns, agent: agent, since: since, limit: limit, visible: visible) }
        var sql = "SELECT id, at, principal, agent, uid, pid, method, ns, target, allowed, error, rev FROM audit WHERE 1"
        var args: [DatabaseValue] = []
        if let ns {
            sql += " AND (ns = ? OR (ns >= ? AND ns < ?))"
            args += [ns.databaseValue, (ns + "/").databaseValue, (ns + "0").databaseValue]
        }
        if let agent { sql += " AND agent = ?"; args.append(agent.databaseValue) }
        if let since { sql += " AND at >= ?"; args.append(since.databaseValue) }
        sql += " ORDER BY id DESC"
        let arguments = StatementArguments(args)
        let text = sql
        return try db.read { db in
            var out: [AuditEntry] = []
            let cursor = try Row.fetchCursor(db, sql: text, arguments: arguments)
            while out.count < limit, let r = try cursor.next() {
                var e = AuditEntry(at: r[1], principal: r[2], agent: r[3], uid: UInt32(truncatingIfNeeded: r[4] as Int64),
                                   pid: Int32(truncatingIfNeeded: r[5] as Int64), method: r[6], ns: r[7], target: r[8],
                                   allowed: r[9], error: r[10], rev: r[11])
                e.id = r[0]
                if let visible, !visible(e.ns) { continue }
                out.append(e)
            }
            return out
        }
    }

    /// Waits until everything queued so far is written (tests, shutdown).
    public func flush() {
        while queue.withLock({ !$0.items.isEmpty }) { usleep(1000) }
        _ = try? db.write { _ in 0 }
    }
}
