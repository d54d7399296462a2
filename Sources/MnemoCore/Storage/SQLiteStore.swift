#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Foundation
import GRDB
import Logging
import MnemoProtocol
import Synchronization

/// One SQLite database of a tier (episodic, semantic): WAL mode with concurrent readers,
/// versioned migrations, and one writer thread that commits the writes of many clients
/// together (group commit).
///
/// Group commit: callers (worker threads, never an event loop) queue a write and wait;
/// the writer thread takes everything queued, runs each write in its own savepoint inside
/// one transaction (a write alone runs in the transaction itself), commits once (one fsync
/// in `strict` mode), then wakes every caller with its own outcome. A write that throws
/// rolls back its savepoint only (alone, the transaction).
///
/// Revisions: a write takes global revisions from ``WriteContext/nextRevision()`` inside
/// the transaction, so revisions are in commit order. The highest one is stored in the
/// same transaction (`mnemo_meta.max_rev`), which lets the engine resume the global
/// counter above it after a crash.
public final class SQLiteStore: Sendable {
    /// The database (a WAL pool on disk; an in-memory queue when volatile).
    public let writer: any DatabaseWriter
    /// Connections for ``readRows(_:_:_:)`` (nil when volatile: the database is GRDB's, in memory).
    private let rawReaders: RawReaders?
    /// The highest revision stored when the database was opened.
    public let maxRevAtOpen: Int64
    /// Short name for logs and thread names ("episodic", "semantic").
    public let name: String
    private let nextRevision: @Sendable () throws(WireError) -> Int64
    private let queue = Mutex<(items: [PendingWrite], stopped: Bool)>(([], false))
    private let wake = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)
    private let logger: Logger
    /// `normal` mode's WAL, fsynced by the writer thread about once a second after commits
    /// (SQLite's `synchronous = NORMAL` syncs it only at checkpoints): the mode's bound on a
    /// power loss, as for the journal. Nil in `strict` (every commit syncs) and `volatile`.
    private let walToSync: String?
    /// Why the database is unusable (damaged), once it was found so; then every call is
    /// refused with `CORRUPT` and nothing more is written to it.
    private let failure = Mutex<String?>(nil)
    /// The most writes committed in one transaction.
    static let maxGroup = 512
    /// On a cluster node: where its writes are committed (the node's cluster
    /// transactions, see ``WorkingMemory/replicate(_:)``); nil on a single node.
    let router = Mutex<(any SQLiteWriteRouter)?>(nil)
    /// On a cluster node: the last feed revision applied to this database (kept in
    /// `mnemo_meta.cluster_rev`, in the same transactions).
    let clusterRev = Atomic<Int64>(0)

    /// Opens (creating if needed) `dir/name.sqlite` and migrates it.
    /// - Parameters:
    ///   - durability: `strict` commits with `synchronous=FULL` (survives power loss),
    ///     `normal` with `synchronous=NORMAL` (survives a crash of the daemon), `volatile`
    ///     keeps the database in memory.
    ///   - migrator: the tier's schema, versioned.
    ///   - nextRevision: where global revisions come from.
    /// - Throws: when the file cannot be opened or migrated.
    public init(dir: String, name: String, durability: Durability, migrator: DatabaseMigrator, logger: Logger,
                nextRevision: @escaping @Sendable () throws(WireError) -> Int64) throws(StorageError) {
        self.name = name
        self.logger = logger
        self.nextRevision = nextRevision
        walToSync = durability == .normal ? dir + "/" + name + ".sqlite-wal" : nil
        var config = Configuration()
        config.label = "mnemo.\(name)"
        config.maximumReaderCount = 4
        config.busyMode = .timeout(5)
        let synchronous = durability == .strict ? "FULL" : "NORMAL"
        let checksums = durability != .volatile && PageChecksums.installed
        config.prepareDatabase { db in
            if checksums { PageChecksums.request(db) }
            try db.execute(sql: "PRAGMA synchronous = \(synchronous)")
        }
        let path = dir + "/" + name + ".sqlite"
        rawReaders = durability == .volatile ? nil : RawReaders(path: path)
        // Before SQLite replays the WAL (and would stop silently at a damaged frame).
        if durability != .volatile {
            let scan = WALScan(path: path + "-wal", index: path + "-shm")
            if let problem = scan.problem(path + "-wal", indexIsProof: durability == .strict) {
                throw StorageError(problem, corrupt: true)
            }
            if let loss = scan.loss(path + "-wal") {
                logger.warning("committed transactions are missing from the log: a power loss in normal mode loses up to about a second of writes; with no power loss, the log was damaged",
                               metadata: ["detail": "\(loss)"])
            }
        }
        do {
            if durability == .volatile {
                writer = try DatabaseQueue(configuration: config)
            } else {
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                writer = try DatabasePool(path: path, configuration: config)
            }
            var all = DatabaseMigrator()
            all.registerMigration("mnemo_meta") { db in
                try db.execute(sql: "CREATE TABLE mnemo_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) STRICT")
                try db.execute(sql: "INSERT INTO mnemo_meta VALUES ('max_rev', 0)")
            }
            // GRDB's pool sets `synchronous = NORMAL` when it turns WAL on, after
            // `prepareDatabase`: `strict` sets it back on the connection that writes.
            if durability == .strict, let pool = writer as? DatabasePool {
                try pool.writeWithoutTransaction { try $0.execute(sql: "PRAGMA synchronous = FULL") }
            }
            try all.migrate(writer)
            try migrator.migrate(writer)
            if checksums, let pool = writer as? DatabasePool, !PageChecksums.enable(pool, path: path) {
                logger.warning("page checksums are off for this database", metadata: ["file": "\(path)"])
            }
            maxRevAtOpen = try writer.read { db in
                try Int64.fetchOne(db, sql: "SELECT value FROM mnemo_meta WHERE key = 'max_rev'") ?? 0
            }
        } catch {
            // A file that is not a database, or whose schema cannot be read, cannot even be
            // opened in a degraded state: the daemon refuses to start (exit 65).
            let db = error as? DatabaseError
            let damaged = db?.resultCode == .SQLITE_CORRUPT || db?.resultCode == .SQLITE_NOTADB
                || db?.extendedResultCode == .SQLITE_IOERR_DATA
            throw StorageError("cannot open \(path): \(PageChecksums.describe(error))", corrupt: damaged)
        }
        // A bounded check at start (measured: about 0.33 s per million episodic records on
        // this machine, warm): a damaged database starts degraded, the other tiers serve.
        if durability != .volatile { check(full: false) }
        Threads.start("mnemo-\(name.prefix(3))-write") { [self] in writeLoop() }
    }

    /// Runs `body` in the next group commit and returns its result once committed.
    /// Blocks the calling thread: call it from a worker, never from an event loop.
    /// - Throws: what `body` threw (its savepoint was rolled back), or `UNAVAILABLE` when
    ///   the transaction could not be committed (e.g. the disk is full): nothing applied.
    public func write<T: Sendable>(_ body: @escaping @Sendable (WriteContext) throws -> T) throws(WireError) -> T {
        try checkUsable()
        if let router = router.withLock({ $0 }) { return try router.write(self, body) }
        let box = ResultBox<T>()
        let pending = PendingWrite { ctx in box.value = try body(ctx) }
        let accepted = queue.withLock { q in
            guard !q.stopped else { return false }
            q.items.append(pending)
            return true
        }
        guard accepted else { throw .app(.shuttingDown, "the \(name) store is closed") }
        wake.signal()
        pending.done.wait()
        if let error = pending.error { throw error }
        guard let value = box.value else { throw .internal("\(name) write produced no result") }
        return value
    }

    /// Runs `body` on a read snapshot (concurrently with the writer and other readers).
    /// - Throws: what `body` threw, or a mapped database error.
    public func read<T: Sendable>(_ body: @Sendable (Database) throws -> T) throws(WireError) -> T {
        try checkUsable()
        do {
            return try writer.read(body)
        } catch {
            throw wireError(error)
        }
    }

    /// Runs ONE statement, `sql` with `arguments`, calling `row` on each row (read with the
    /// SQLite C API, e.g. `sqlite3_column_int64`) until it returns false: a read for the
    /// hottest queries, on a connection of its own without GRDB (``RawReaders``; through a
    /// GRDB reader when none can be opened), the statement its own read snapshot (no
    /// `BEGIN`/`COMMIT`). `row` must not keep the statement.
    /// - Throws: what `row` threw, or a mapped database error.
    public func readRows(_ sql: String, _ arguments: [DatabaseValue], _ row: (OpaquePointer) throws -> Bool) throws(WireError) {
        try checkUsable()
        do {
            if let rawReaders, try rawReaders.read({ c in try RawReaders.forEachRow(try c.statement(sql), arguments, row) }) != nil {
                return
            }
            // Volatile (GRDB's in-memory database), or no raw connection could be opened.
            try writer.unsafeRead { db in try RawReaders.forEachRow(try db.cachedStatement(sql: sql).sqliteStatement, arguments, row) }
        } catch {
            throw wireError(error)
        }
    }

    /// Records and bytes per principal (``PrincipalUsage``).
    public func usageByPrincipal() throws(WireError) -> [String: (records: Int, bytes: Int)] {
        try read { db in try PrincipalUsage.all(db) }
    }

    /// Why the database was found damaged; nil while it is healthy.
    public var damage: String? { failure.withLock { $0 } }

    /// - Throws: `CORRUPT` once the database was found damaged.
    func checkUsable() throws(WireError) {
        if let reason = failure.withLock({ $0 }) { throw Self.corrupt(name, reason) }
    }

    static func corrupt(_ name: String, _ reason: String) -> WireError {
        .app(.corrupt, "the \(name) tier is damaged (\(reason)): its calls are refused until it is repaired (mnemo check, mnemo repair); the other tiers go on",
             [JSONMember("tier", .string(name == "episodic" ? "ep" : name == "semantic" ? "sem" : name)), JSONMember("reason", .string(reason))])
    }

    /// Marks the database damaged (logged at `error` once); every later call is refused.
    public func markDamaged(_ reason: String) {
        let first = failure.withLock { f in
            defer { f = f ?? reason }
            return f == nil
        }
        if first {
            logger.error("database is damaged: its tier is refused until it is repaired; the other tiers go on",
                         metadata: ["store": "\(name)", "reason": "\(reason)"])
        }
    }

    /// Checks the database's structure (`PRAGMA quick_check`, or `integrity_check` when
    /// `full`), marking it damaged when the check fails.
    /// - Returns: the problems found (empty when it is sound).
    @discardableResult
    public func check(full: Bool) -> [String] {
        let pragma = full ? "integrity_check" : "quick_check"
        let found: [String]
        do {
            found = try writer.read { db in try String.fetchAll(db, sql: "PRAGMA \(pragma)(20)") }
        } catch {
            markDamaged("\(pragma) failed: \(PageChecksums.describe(error))")
            return ["\(error)"]
        }
        let problems = found.flatMap { $0.split(separator: "\n").map(String.init) }.filter { $0 != "ok" && !$0.hasPrefix("***") }
        guard !problems.isEmpty else { return [] }
        markDamaged("\(pragma): \(problems.prefix(2).joined(separator: "; "))" + (problems.count > 2 ? "; ..." : ""))
        return problems
    }

    /// Commits what is queued, then stops the writer thread.
    public func close() {
        let wasRunning = queue.withLock { q in
            defer { q.stopped = true }
            return !q.stopped
        }
        guard wasRunning else { return }
        wake.signal()
        finished.wait()
        rawReaders?.close()
        // A clean stop leaves everything in the database file (a short WAL to replay next
        // time, and a file that `mnemo check` reads whole).
        if writer is DatabasePool, damage == nil {
            do {
                _ = try writer.writeWithoutTransaction { try $0.checkpoint(.truncate) }
            } catch {
                logger.warning("checkpoint at close failed", metadata: ["store": "\(name)", "error": "\(error)"])
            }
        }
    }

    private func writeLoop() {
        var unsynced = false
        var lastSync = DispatchTime.now()
        while true {
            if walToSync != nil && unsynced {
                if wake.wait(timeout: lastSync + .seconds(1)) == .timedOut {
                    syncWAL()
                    unsynced = false
                    lastSync = .now()
                    continue
                }
            } else {
                wake.wait()
            }
            while true {
                let (batch, stopped) = queue.withLock { q in
                    let n = min(q.items.count, Self.maxGroup)
                    let batch = Array(q.items.prefix(n))
                    q.items.removeFirst(n)
                    return (batch, q.stopped)
                }
                if batch.isEmpty {
                    if stopped {
                        finished.signal()
                        return
                    }
                    break
                }
                commit(batch)
                unsynced = true
                if walToSync != nil && DispatchTime.now() >= lastSync + .seconds(1) {
                    syncWAL()
                    unsynced = false
                    lastSync = .now()
                }
            }
        }
    }

    /// fdatasync of the WAL (an fsync through any descriptor of a file covers its data).
    private func syncWAL() {
        guard let walToSync else { return }
        let fd = open(walToSync, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        if fdatasync(fd) != 0 { logger.warning("cannot fsync the WAL", metadata: ["file": "\(walToSync)", "error": "\(errno)"]) }
        Glibc.close(fd)
    }

    private func commit(_ batch: [PendingWrite]) {
        var actions: [() -> Void] = []
        do {
            try writer.writeWithoutTransaction { db in
                try db.inTransaction {
                    let ctx = WriteContext(db: db, nextRevision: nextRevision)
                    if batch.count == 1 {
                        // A write alone needs no savepoint: the transaction is its unit (a
                        // savepoint costs two statements, and FTS5 flushes its pending terms
                        // at each one).
                        do {
                            try batch[0].body(ctx)
                        } catch {
                            batch[0].error = wireError(error)
                            return .rollback
                        }
                    } else {
                        for pending in batch {
                            let mark = ctx.actions.count
                            do {
                                try db.inSavepoint {
                                    try pending.body(ctx)
                                    return .commit
                                }
                            } catch {
                                ctx.actions.removeSubrange(mark...)
                                pending.error = wireError(error)
                            }
                        }
                    }
                    if ctx.maxRev > 0 {
                        try db.cachedStatement(sql: "UPDATE mnemo_meta SET value = max(value, ?) WHERE key = 'max_rev'")
                            .execute(arguments: [ctx.maxRev])
                    }
                    actions = ctx.actions
                    return .commit
                }
            }
            // Committed: in-memory mirrors (e.g. the vector index) follow, in commit order,
            // before any writer is answered.
            for action in actions { action() }
        } catch {
            let wire = wireError(error)
            logger.error("group commit failed", metadata: ["store": "\(name)", "writes": "\(batch.count)", "error": "\(error)"])
            for pending in batch { pending.error = wire.code == -32000 ? wire : .app(.unavailable, "\(name) store: \(wire.message); nothing was applied") }
        }
        for pending in batch { pending.done.signal() }
    }

    /// Maps an error thrown inside a transaction to the one wire error a client sees. A
    /// damaged database (`SQLITE_CORRUPT`, `SQLITE_NOTADB`, a failed read of the file) is
    /// marked so, and that and every later call is `CORRUPT`.
    func wireError(_ error: any Error) -> WireError {
        if let wire = error as? WireError { return wire }
        if let db = error as? DatabaseError {
            let damaged: Bool
            switch db.extendedResultCode {
            case .SQLITE_CORRUPT, .SQLITE_NOTADB, .SQLITE_IOERR_READ, .SQLITE_IOERR_SHORT_READ, .SQLITE_IOERR_DATA: damaged = true
            default: damaged = db.resultCode == .SQLITE_CORRUPT || db.resultCode == .SQLITE_NOTADB
            }
            if damaged {
                let reason = db.extendedResultCode == .SQLITE_IOERR_DATA ? PageChecksums.describe(db) : db.message ?? "\(db.extendedResultCode)"
                markDamaged(reason)
                return Self.corrupt(name, damage ?? reason)
            }
            switch db.resultCode {
            case .SQLITE_FULL, .SQLITE_IOERR, .SQLITE_CANTOPEN, .SQLITE_READONLY:
                return .app(.unavailable, "\(name) store cannot write (\(db.resultCode)); nothing was applied")
            case .SQLITE_BUSY, .SQLITE_LOCKED:
                return .app(.unavailable, "\(name) store is busy; nothing was applied")
            default:
                return .internal("\(name) store: \(db.message ?? "\(db.resultCode)")")
            }
        }
        return .internal("\(name) store: \(error)")
    }
}

/// What a write sees inside a group commit.
public final class WriteContext {
    /// The open transaction.
    public let db: Database
    private let source: @Sendable () throws(WireError) -> Int64
    /// The highest revision taken in this transaction.
    fileprivate(set) var maxRev: Int64 = 0
    /// What runs once the transaction has committed.
    var actions: [() -> Void] = []

    init(db: Database, nextRevision: @escaping @Sendable () throws(WireError) -> Int64) {
        self.db = db
        self.source = nextRevision
    }

    /// Runs `action` on the writer thread once the transaction has committed (dropped if
    /// this write or the transaction fails): for in-memory state that mirrors the database.
    public func afterCommit(_ action: @escaping () -> Void) {
        actions.append(action)
    }

    /// The next global revision, for this write.
    public func nextRevision() throws(WireError) -> Int64 {
        let rev = try source()
        maxRev = max(maxRev, rev)
        return rev
    }
}

/// Where a cluster node's SQLite writes go: into its next cluster transaction.
protocol SQLiteWriteRouter: Sendable {
    /// Runs `body` in `store`'s part of the next cluster transaction; its result once committed.
    func write<T: Sendable>(_ store: SQLiteStore, _ body: @escaping @Sendable (WriteContext) throws -> T) throws(WireError) -> T
}

/// A queued write and its outcome.
// @unchecked: `error` is written by the writer thread before `done` is signaled and read
// by the caller only after `done.wait()`; the semaphore orders the two.
private final class PendingWrite: @unchecked Sendable {
    let body: @Sendable (WriteContext) throws -> Void
    var error: WireError?
    let done = DispatchSemaphore(value: 0)
    init(_ body: @escaping @Sendable (WriteContext) throws -> Void) { self.body = body }
}

// @unchecked: written by the writer thread before the caller's semaphore is signaled,
// read by the caller after waiting on it.
private final class ResultBox<T>: @unchecked Sendable {
    var value: T?
}
