import Foundation
import Logging
import MnemoProtocol
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// How a node reaches its cluster.
public struct ClusterSettings: Sendable {
    /// A libpq connection string (`host=/run/postgresql dbname=mnemo`, or a URI).
    public var conninfo: String
    /// The password, read from an environment variable or a file by the config; never in it.
    public var password: String?
    /// This node's name, recorded with every change it writes.
    public var node: String
    /// How often the feed is read when no notification arrives (a lost NOTIFY costs at
    /// most this much staleness).
    public var pollMs: Int
    /// Longest wait of a read for `min_rev` or `consistency: "linearizable"`.
    public var maxWaitMs: Int
    /// A snapshot of the state is written once the feed grew by this many revisions past
    /// the latest one.
    public var snapshotEvery: Int64
    /// Revisions of the feed kept before the latest snapshot (for nodes catching up and
    /// watches resuming from an older revision); older rows are deleted.
    public var feedRetain: Int64
    /// How long a node's write transaction may sit idle between its statements before
    /// PostgreSQL ends it (releasing the counter row for the other nodes).
    public var txnTimeoutMs: Int

    public init(conninfo: String, password: String? = nil, node: String, pollMs: Int = 200, maxWaitMs: Int = 5_000,
                snapshotEvery: Int64 = 100_000, feedRetain: Int64 = 100_000, txnTimeoutMs: Int = 5_000) {
        self.conninfo = conninfo
        self.password = password
        self.node = node
        self.pollMs = pollMs
        self.maxWaitMs = maxWaitMs
        self.snapshotEvery = snapshotEvery
        self.feedRetain = feedRetain
        self.txnTimeoutMs = txnTimeoutMs
    }
}

/// One row of the change feed: the changes of one write transaction.
struct FeedRow {
    /// The transaction's last revision.
    var rev: Int64
    /// Its first revision (`rev` when it took one).
    var firstRev: Int64
    /// Change records, one per line.
    var body: [UInt8]
}

/// This node's view of PostgreSQL: the connection that writes (one transaction at a time;
/// writes are serialized cluster-wide anyway, by the counter row) and the one that tails
/// the feed, on a thread of its own.
public final class ClusterLog: Sendable {
    public let settings: ClusterSettings
    let clock: ClusterClock
    let logger: Logger
    /// The writing connection (nil until opened, or after it broke).
    private let writer = Mutex<ConnectionBox>(ConnectionBox(role: "writer"))
    /// Tailer's state, for `admin.stats` and stale reads.
    let status = Mutex(Status())
    /// Set to stop the tailer.
    private let stopping = Atomic<Bool>(false)

    struct Status {
        /// Whether the tailer's last attempt reached PostgreSQL.
        var connected = false
        /// Clock time (ms) of the last successful read of the feed.
        var lastContactMs: Int64 = 0
        /// The last error, while disconnected.
        var lastError: String?
        /// Reconnections so far.
        var reconnects = 0
    }

    /// Connects, creates or migrates the schema.
    /// - Throws: ``ClusterError`` when PostgreSQL cannot be reached or its schema is newer.
    public init(settings: ClusterSettings, clock: ClusterClock, logger: Logger) throws(ClusterError) {
        self.settings = settings
        self.clock = clock
        self.logger = logger
        // The schema is migrated on a connection of its own; the writer's is opened (and set
        // up) at the first write.
        try ClusterSchema.migrate(try Self.connect(settings))
        status.withLock {
            $0.connected = true
            $0.lastContactMs = clock.nowMs()
        }
    }

    static func connect(_ settings: ClusterSettings) throws(ClusterError) -> PGConnection {
        do {
            return try PGConnection(settings, role: "setup")
        } catch {
            throw .postgres(error)
        }
    }

    // MARK: writing

    /// An open write transaction: the counter row is locked until ``commit(first:last:body:)``
    /// or ``rollback()``.
    struct Transaction {
        fileprivate let conn: PGConnection
        /// The cluster's revision when the lock was taken.
        let rev: Int64
        /// Rows this node has not applied yet (revisions above the `applied` given).
        let missing: [FeedRow]
    }

    /// Runs `body` holding this node's writer: one write transaction at a time per node.
    func withWriter<T>(_ body: (inout ConnectionBox) -> T) -> T {
        writer.withLock { box in body(&box) }
    }

    /// Begins a write transaction: locks the counter row, reads the database's clock (the
    /// node's clock is set from it) and the rows after `applied`.
    /// - Throws: `UNAVAILABLE` when PostgreSQL cannot be reached (nothing is changed).
    func begin(_ box: inout ConnectionBox, applied: Int64) throws(WireError) -> Transaction {
        try box.withRetry(settings, logger) { conn throws(PGError) in
            let head = try conn.exec("""
                BEGIN; SELECT rev, floor(extract(epoch FROM clock_timestamp()) * 1000)::int8
                FROM mnemo_counter WHERE id = 1 FOR UPDATE
                """)
            guard head.count == 1 else { throw PGError(message: "mnemo_counter has no row", connectionLost: false) }
            let rev = head.int(0, 0)
            clock.observe(dbMs: head.int(0, 1))
            let missing = rev > applied ? try fetch(conn, after: applied, limit: nil) : []
            return Transaction(conn: conn, rev: rev, missing: missing)
        }
    }

    /// Appends one transaction's changes and commits.
    /// - Throws: `UNAVAILABLE` when it failed; then whether it committed is not known to
    ///   this node (the caller resynchronizes from the feed).
    /// A row holding SQLite tiers' changes is `keep`: never trimmed (their state of record).
    func commit(_ box: inout ConnectionBox, _ tx: Transaction, first: Int64, last: Int64, body: [UInt8], keep: Bool) throws(WireError) {
        do throws(PGError) {
            try tx.conn.exec("""
                WITH c AS (UPDATE mnemo_counter SET rev = $1 WHERE id = 1)
                INSERT INTO mnemo_changes (rev, first_rev, node, body, keep) VALUES ($1, $2, $3, $4, $5)
                """, [.int(last), .int(first), .text(settings.node), .bytes(body), .text(keep ? "true" : "false")])
            try tx.conn.exec("NOTIFY mnemo_changes; COMMIT")
        } catch {
            box.failed(error, logger)
            throw Self.unavailable(error)
        }
    }

    /// Ends a transaction that changed nothing.
    func rollback(_ box: inout ConnectionBox, _ tx: Transaction) {
        do { try tx.conn.exec("ROLLBACK") } catch { box.failed(error, logger) }
    }

    /// The cluster's current revision, read from PostgreSQL (for linearizable reads).
    /// - Throws: `UNAVAILABLE` when PostgreSQL cannot be reached.
    public func currentRevision() throws(WireError) -> Int64 {
        try withWriter { box in
            Result { () throws(WireError) in
                try box.withRetry(settings, logger) { conn throws(PGError) in
                    let rows = try conn.exec("SELECT rev, floor(extract(epoch FROM clock_timestamp()) * 1000)::int8 FROM mnemo_counter WHERE id = 1")
                    clock.observe(dbMs: rows.int(0, 1))
                    return rows.int(0, 0)
                }
            }
        }.get()
    }

    static func unavailable(_ error: PGError) -> WireError {
        .app(.unavailable, "the cluster's PostgreSQL did not take the call (nothing was applied): \(error.message)",
             [JSONMember("reason", .string("cluster"))])
    }

    // MARK: reading the feed

    /// Rows after `applied`, in revision order.
    func fetch(_ conn: PGConnection, after applied: Int64, limit: Int?) throws(PGError) -> [FeedRow] {
        let sql = "SELECT rev, first_rev, body FROM mnemo_changes WHERE rev > $1 ORDER BY rev"
            + (limit.map { " LIMIT \($0)" } ?? "")
        return try rows(conn.exec(sql, [.int(applied)], binaryResults: true))
    }

    private func rows(_ rows: PGRows) -> [FeedRow] {
        var out: [FeedRow] = []
        out.reserveCapacity(rows.count)
        for i in 0..<rows.count {
            out.append(FeedRow(rev: Self.bigEndian(rows.bytes(i, 0)), firstRev: Self.bigEndian(rows.bytes(i, 1)),
                               body: rows.bytes(i, 2)))
        }
        return out
    }

    /// Rows holding SQLite tiers' changes (`keep`) after `applied`, up to `last`, in revision order.
    func fetchKept(_ conn: PGConnection, after applied: Int64, upTo last: Int64, limit: Int) throws(PGError) -> [FeedRow] {
        try rows(conn.exec("SELECT rev, first_rev, body FROM mnemo_changes WHERE keep AND rev > $1 AND rev <= $2 ORDER BY rev LIMIT \(limit)",
                           [.int(applied), .int(last)], binaryResults: true))
    }

    /// The latest snapshot: its revision and records; nil when there is none.
    func latestSnapshot(_ conn: PGConnection) throws(PGError) -> FeedRow? {
        let rows = try conn.exec("SELECT rev, body FROM mnemo_snapshots ORDER BY rev DESC LIMIT 1", [], binaryResults: true)
        guard rows.count == 1 else { return nil }
        let rev = Self.bigEndian(rows.bytes(0, 0))
        return FeedRow(rev: rev, firstRev: 0, body: rows.bytes(0, 1))
    }

    /// The revision of the latest snapshot (0: none), on a connection of its own.
    func latestSnapshotRevision() throws(PGError) -> Int64 {
        let conn = try PGConnection(settings, role: "snapshot")
        return try conn.exec("SELECT coalesce(max(rev), 0) FROM mnemo_snapshots").int(0, 0)
    }

    /// Stores a snapshot of the state at `rev`, drops older ones and the feed rows more than
    /// `feedRetain` revisions before it, on a connection of its own (writes go on).
    func writeSnapshot(rev: Int64, body: [UInt8]) throws(PGError) {
        let conn = try PGConnection(settings, role: "snapshot")
        try conn.exec("BEGIN")
        try conn.exec("INSERT INTO mnemo_snapshots (rev, node, body) VALUES ($1, $2, $3) ON CONFLICT (rev) DO NOTHING",
                      [.int(rev), .text(settings.node), .bytes(body)])
        try conn.exec("DELETE FROM mnemo_snapshots WHERE rev < $1", [.int(rev)])
        try conn.exec("DELETE FROM mnemo_changes WHERE rev <= $1 AND NOT keep", [.int(rev - settings.feedRetain)])
        try conn.exec("COMMIT")
    }

    private static func bigEndian(_ b: [UInt8]) -> Int64 {
        var v: UInt64 = 0
        for byte in b { v = v << 8 | UInt64(byte) }
        return Int64(bitPattern: v)
    }

    /// Tails the feed on a thread of its own until ``stop()``: calls `follow` with its
    /// connection, woken by NOTIFY or every `pollMs`; reconnects with
    /// backoff (50 ms doubling to 2 s) after a lost connection.
    func startTailing(_ follow: @escaping @Sendable (PGConnection) throws(ClusterError) -> Void) {
        Threads.start("mnemo-cl-tail") { [self] in
            var conn: PGConnection?
            var backoffMs = 50
            while !stopping.load(ordering: .relaxed) {
                do throws(PGError) {
                    if conn == nil || conn?.isOK == false {
                        let c = try PGConnection(settings, role: "tail")
                        try c.exec("LISTEN mnemo_changes")
                        conn = c
                        status.withLock { $0.reconnects += 1 }
                    }
                    guard let c = conn else { continue }
                    do throws(ClusterError) {
                        try follow(c)
                    } catch .postgres(let e) {
                        throw e
                    } catch {
                        logger.error("cannot apply the change feed", metadata: ["error": "\(error)"])
                        Self.sleepMs(1000)
                    }
                    status.withLock {
                        $0.connected = true
                        $0.lastContactMs = clock.nowMs()
                        $0.lastError = nil
                    }
                    backoffMs = 50
                    _ = try wait(c)
                } catch {
                    conn = nil
                    let wasConnected = status.withLock { s in
                        defer {
                            s.connected = false
                            s.lastError = error.message
                        }
                        return s.connected
                    }
                    if wasConnected { logger.warning("lost PostgreSQL; reconnecting", metadata: ["error": "\(error)"]) }
                    Self.sleepMs(backoffMs)
                    backoffMs = min(backoffMs * 2, 2000)
                }
            }
        }
    }

    /// Waits for a notification or `pollMs`.
    private func wait(_ conn: PGConnection) throws(PGError) -> Bool {
        if try conn.drainNotifications() { return true }
        var fds = pollfd(fd: conn.socket, events: Int16(POLLIN), revents: 0)
        let n = poll(&fds, 1, Int32(settings.pollMs))
        if n > 0 { return try conn.drainNotifications() }
        return false
    }

    static func sleepMs(_ ms: Int) { usleep(useconds_t(ms * 1000)) }

    /// Stops the tailer (it ends within `pollMs`).
    public func stop() { stopping.store(true, ordering: .relaxed) }

    /// What `admin.health` reports of this node's link to PostgreSQL.
    public struct Health: Sendable {
        /// Whether the feed's last read reached PostgreSQL.
        public var connected: Bool
        /// Milliseconds since the feed was last read while disconnected (0 while connected):
        /// how much older than the cluster local reads may be.
        public var stalenessMs: Int64
        /// Connections opened by the tailer (1 after start).
        public var reconnects: Int
        /// Why it is disconnected.
        public var lastError: String?
    }

    public var health: Health {
        status.withLock { s in
            Health(connected: s.connected, stalenessMs: s.connected ? 0 : max(0, clock.nowMs() - s.lastContactMs),
                   reconnects: s.reconnects, lastError: s.connected ? nil : s.lastError)
        }
    }
}

extension PGConnection {
    /// A connection of this node, named `mnemod NODE ROLE` in `pg_stat_activity`.
    convenience init(_ settings: ClusterSettings, role: String) throws(PGError) {
        try self.init(conninfo: settings.conninfo, password: settings.password, application: "mnemod \(settings.node) \(role)")
    }
}

/// The writer's connection, reopened at the next use after it broke.
struct ConnectionBox: @unchecked Sendable {
    /// What the connection is for (its `application_name`).
    let role: String
    var conn: PGConnection?

    init(role: String) { self.role = role }

    mutating func open(_ settings: ClusterSettings, _ logger: Logger) throws(WireError) -> PGConnection {
        if let conn, conn.isOK { return conn }
        conn = nil
        do {
            let c = try PGConnection(settings, role: role)
            // A node that stops between the statements of its transaction (paused, or cut
            // off) holds the counter row, and with it every node's writes: PostgreSQL ends
            // its session after `txnTimeoutMs` (its commit then fails: not acknowledged), and
            // a write waits at most twice that for the row.
            try c.exec("SET idle_in_transaction_session_timeout = \(settings.txnTimeoutMs); SET lock_timeout = \(2 * settings.txnTimeoutMs)")
            conn = c
            return c
        } catch {
            throw ClusterLog.unavailable(error)
        }
    }

    /// Runs `body`, which must change nothing before its first statement succeeds, on the
    /// open connection; once more on a new connection when the first one turns out to have
    /// been lost while idle (PostgreSQL restarted, or ended the session).
    /// - Throws: `UNAVAILABLE` naming PostgreSQL's error.
    mutating func withRetry<T>(_ settings: ClusterSettings, _ logger: Logger,
                               _ body: (PGConnection) throws(PGError) -> T) throws(WireError) -> T {
        var attempt = 0
        while true {
            attempt += 1
            let conn = try open(settings, logger)
            do {
                return try body(conn)
            } catch {
                failed(error, logger)
                if error.connectionLost && attempt == 1 { continue }
                throw ClusterLog.unavailable(error)
            }
        }
    }

    /// After an error: a broken connection is dropped; a healthy one has its transaction
    /// rolled back.
    mutating func failed(_ error: PGError, _ logger: Logger) {
        guard let c = conn else { return }
        if error.connectionLost || !c.isOK {
            conn = nil
        } else if (try? c.exec("ROLLBACK")) == nil {
            conn = nil
        }
    }
}
