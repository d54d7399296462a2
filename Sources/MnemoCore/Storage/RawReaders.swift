import GRDB
import GRDBSQLite
import Synchronization

/// Read-only SQLite connections of one database file for the hottest reads, used without
/// GRDB: a connection is checked out of an idle stack, runs ONE prepared statement (its own
/// implicit read snapshot, so no `BEGIN`/`COMMIT`), and goes back with its statements
/// prepared. Measured on `ep.query` (perf): GRDB's pool checkout, `DispatchQueue.sync` into
/// the reader and the transaction around every read were 12% of mnemod's CPU per page, and
/// its `Row` decoding a quarter; the cost of this path is the statement itself.
///
/// Connections open through the default VFS, the page-checksum shim (``PageChecksums``),
/// so every page read is verified as on GRDB's connections; `query_only` forbids writes.
final class RawReaders: Sendable {
    /// One connection and the statements prepared on it, by SQL.
    final class Connection: @unchecked Sendable {  // used by one thread at a time (checked out)
        let handle: OpaquePointer
        var statements: [String: OpaquePointer] = [:]

        init(handle: OpaquePointer) { self.handle = handle }

        /// The statement for `sql`, prepared once per connection.
        func statement(_ sql: String) throws -> OpaquePointer {
            if let s = statements[sql] { return s }
            var s: OpaquePointer?
            let rc = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &s, nil)
            guard rc == SQLITE_OK, let s else { throw RawReaders.error(rc, handle, sql) }
            statements[sql] = s
            return s
        }

        deinit {
            for s in statements.values { sqlite3_finalize(s) }
            sqlite3_close_v2(handle)
        }
    }

    private let path: String
    private let idle = Mutex<(connections: [Connection], closed: Bool)>(([], false))

    init(path: String) { self.path = path }

    /// Runs `body` on a connection of its own (opened on first need); nil, without running
    /// it, when none is idle and none can be opened (e.g. out of file descriptors: the
    /// caller reads through GRDB's pool instead, whose connections are already open).
    /// - Throws: what `body` throws.
    func read<T>(_ body: (Connection) throws -> T) throws -> T? {
        guard let c = idle.withLock({ $0.connections.popLast() }) ?? (try? open()) else { return nil }
        defer {
            // A connection checked out while the store closed is dropped (closed by deinit).
            idle.withLock { if !$0.closed { $0.connections.append(c) } }
        }
        return try body(c)
    }

    /// Closes the idle connections; one in use closes when it comes back.
    func close() {
        idle.withLock {
            $0.closed = true
            $0.connections.removeAll()
        }
    }

    private func open() throws -> Connection {
        var handle: OpaquePointer?
        let rc = sqlite3_open_v2(path, &handle, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nil)
        guard rc == SQLITE_OK, let handle else {
            let e = Self.error(rc, handle, nil)
            sqlite3_close_v2(handle)
            throw e
        }
        let c = Connection(handle: handle)
        sqlite3_busy_timeout(handle, 5000)
        // Extended codes, as GRDB's connections give: a page failing its checksum is
        // SQLITE_IOERR_DATA, which marks the tier damaged (``SQLiteStore/wireError(_:)``).
        sqlite3_extended_result_codes(handle, 1)
        let pragma = sqlite3_exec(handle, "PRAGMA query_only = 1", nil, nil, nil)
        guard pragma == SQLITE_OK else { throw Self.error(pragma, handle, nil) }
        return c
    }

    /// The error of a failed call on `handle`.
    static func error(_ rc: Int32, _ handle: OpaquePointer?, _ sql: String?) -> DatabaseError {
        DatabaseError(resultCode: ResultCode(rawValue: rc),
                      message: handle.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open the database", sql: sql)
    }

    /// Binds `arguments` (1-based, in order) to `statement`, steps through its rows calling
    /// `row` on each until it returns false, and resets it (which ends its read snapshot).
    /// - Throws: a `DatabaseError` when a step fails.
    static func forEachRow(_ statement: OpaquePointer, _ arguments: [DatabaseValue], _ row: (OpaquePointer) throws -> Bool) throws {
        defer {
            sqlite3_reset(statement)
            sqlite3_clear_bindings(statement)
        }
        let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
        for (i, value) in arguments.enumerated() {
            let at = Int32(i + 1)
            let rc: Int32
            switch value.storage {
            case .null: rc = sqlite3_bind_null(statement, at)
            case .int64(let v): rc = sqlite3_bind_int64(statement, at, v)
            case .double(let v): rc = sqlite3_bind_double(statement, at, v)
            case .string(let v): rc = sqlite3_bind_text(statement, at, v, -1, transient)
            case .blob(let v): rc = v.withUnsafeBytes { sqlite3_bind_blob(statement, at, $0.baseAddress, Int32($0.count), transient) }
            }
            guard rc == SQLITE_OK else { throw error(rc, sqlite3_db_handle(statement), nil) }
        }
        while true {
            let rc = sqlite3_step(statement)
            if rc == SQLITE_DONE { return }
            guard rc == SQLITE_ROW else { throw error(rc, sqlite3_db_handle(statement), String(cString: sqlite3_sql(statement))) }
            guard try row(statement) else { return }
        }
    }
}
