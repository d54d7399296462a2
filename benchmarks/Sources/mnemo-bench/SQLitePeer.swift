import CSQLiteBench
import Foundation

/// SQLite used directly (the C API, no wrapper), as an agent would without mnemod: the
/// peer of `ep.append`, `ep.query` and `ep.search`, on a copy of the database mnemod
/// created (same schema, same FTS5 triggers), with mnemod's settings in `normal`
/// durability: WAL, `synchronous = NORMAL`.
final class SQLiteDB {
    let db: OpaquePointer

    init(path: String) throws {
        var handle: OpaquePointer?
        guard sqlite3_open_v2(path, &handle, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nil) == SQLITE_OK,
            let handle
        else { throw BenchError("cannot open \(path)") }
        db = handle
        sqlite3_busy_timeout(db, 10_000)
        try exec("PRAGMA journal_mode = WAL")
        try exec("PRAGMA synchronous = NORMAL")
    }

    deinit { sqlite3_close_v2(db) }

    static var version: String { String(cString: sqlite3_libversion()) }

    /// Copies a database that another process wrote and closed (its `-wal` too, which
    /// may still hold committed pages).
    static func copy(_ from: String, to: String) throws {
        try FileManager.default.copyItem(atPath: from, toPath: to)
        if FileManager.default.fileExists(atPath: from + "-wal") {
            try FileManager.default.copyItem(atPath: from + "-wal", toPath: to + "-wal")
        }
    }

    func exec(_ sql: String) throws {
        guard sqlite3_exec(db, sql, nil, nil, nil) == SQLITE_OK else { throw error(sql) }
    }

    func prepare(_ sql: String) throws -> SQLiteStatement {
        var stmt: OpaquePointer?
        guard sqlite3_prepare_v3(db, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &stmt, nil) == SQLITE_OK, let stmt else {
            throw error(sql)
        }
        return SQLiteStatement(stmt, db: self)
    }

    func error(_ context: String) -> BenchError {
        BenchError("sqlite: \(String(cString: sqlite3_errmsg(db))) (\(context.prefix(60)))")
    }
}

/// A prepared statement, reset and rebound for every use.
final class SQLiteStatement {
    let stmt: OpaquePointer
    unowned let db: SQLiteDB
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    init(_ stmt: OpaquePointer, db: SQLiteDB) {
        self.stmt = stmt
        self.db = db
    }

    deinit { sqlite3_finalize(stmt) }

    /// Binds `args` (Int, Int64, String or nil) from parameter 1 on.
    func bind(_ args: [Any?]) {
        sqlite3_reset(stmt)
        sqlite3_clear_bindings(stmt)
        for (i, a) in args.enumerated() {
            let at = Int32(i + 1)
            switch a {
            case let v as Int: sqlite3_bind_int64(stmt, at, Int64(v))
            case let v as Int64: sqlite3_bind_int64(stmt, at, v)
            case let v as String: sqlite3_bind_text(stmt, at, v, -1, Self.transient)
            default: sqlite3_bind_null(stmt, at)
            }
        }
    }

    /// Steps once: true while there is a row.
    func step() throws -> Bool {
        switch sqlite3_step(stmt) {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default: throw db.error("step")
        }
    }

    /// Runs a statement without rows.
    func run(_ args: [Any?]) throws {
        bind(args)
        while try step() {}
    }

    /// Reads every row, materializing each column as a Swift value (text as String, numbers
    /// as Int64), like a client library hands rows to its caller. Returns the row count.
    func rows(_ args: [Any?]) throws -> Int {
        bind(args)
        var count = 0
        let columns = sqlite3_column_count(stmt)
        var sink = 0
        while try step() {
            for c in 0..<columns {
                switch sqlite3_column_type(stmt, c) {
                case SQLITE_INTEGER: sink &+= Int(sqlite3_column_int64(stmt, c))
                case SQLITE_FLOAT: sink &+= Int(sqlite3_column_double(stmt, c))
                case SQLITE_TEXT:
                    if let p = sqlite3_column_text(stmt, c) { sink &+= String(cString: p).utf8.count }
                default: break
                }
            }
            count += 1
        }
        if sink == -1 { print("") }  // keeps the reads
        return count
    }
}

/// The statements mnemod's episodic store runs, used directly.
final class EpisodicSQL {
    let db: SQLiteDB
    private let insert: SQLiteStatement
    private let begin: SQLiteStatement
    private let commit: SQLiteStatement
    private let latestExact: SQLiteStatement
    private let latestBelow: SQLiteStatement
    private let search: SQLiteStatement
    static let columns = "rev, id, ns, kind, content, data, task, tags, at, agent, principal, uid, pid, derived_from, summarized, pinned"

    init(path: String) throws {
        db = try SQLiteDB(path: path)
        insert = try db.prepare("""
            INSERT INTO episodes (id, ns, kind, content, data, task, tags, at, agent, principal, uid, pid, derived_from, idem_key, nskey)
            VALUES (?, ?, ?, ?, NULL, NULL, '[]', ?, ?, 'local', ?, ?, NULL, NULL, ?)
            """)
        begin = try db.prepare("BEGIN IMMEDIATE")
        commit = try db.prepare("COMMIT")
        // ep.query {ns, order: desc, limit: 20}: the namespace itself and the ones below it,
        // limit + 1 rows each (the extra row tells whether a cursor is needed), as mnemod does.
        latestExact = try db.prepare("SELECT \(Self.columns) FROM episodes WHERE ns = ? ORDER BY rev DESC LIMIT ?")
        latestBelow = try db.prepare("SELECT \(Self.columns) FROM episodes WHERE ns >= ? AND ns < ? ORDER BY rev DESC LIMIT ?")
        let cols = Self.columns.split(separator: ",").map { "e." + $0.trimmingCharacters(in: .whitespaces) }.joined(separator: ", ")
        search = try db.prepare("""
            SELECT \(cols), bm25(episodes_fts, 1.0, 0.0) AS rank FROM episodes_fts
            JOIN episodes e ON e.rev = episodes_fts.rowid
            WHERE episodes_fts MATCH ? AND (e.ns = ? OR (e.ns >= ? AND e.ns < ?))
            ORDER BY rank, e.rev DESC LIMIT ?
            """)
    }

    /// One append in its own transaction (what one agent process does per record).
    func append(id: String, ns: String, content: String, agent: String) throws {
        try begin.run([])
        do {
            try insert.run([id, ns, "observation", content, Int64(Date().timeIntervalSince1970 * 1000), agent,
                            Int64(getuid()), Int64(getpid()), Self.namespaceKeys(ns)])
            try commit.run([])
        } catch {
            try? db.exec("ROLLBACK")
            throw error
        }
    }

    /// The latest `limit` records of `ns`.
    func latest(ns: String, limit: Int) throws -> Int {
        let a = try latestExact.rows([ns, limit + 1])
        let b = try latestBelow.rows([ns + "/", ns + "0", limit + 1])
        return min(a + b, limit)
    }

    /// FTS5 search of `text` (any word) under the prefix `ns`, ranked by BM25, as mnemod's
    /// `ep.search` in keyword mode.
    func search(ns: String, text: String, limit: Int) throws -> Int {
        try search.rows([Self.match(text: text, ns: ns), ns, ns + "/", ns + "0", limit])
    }

    /// mnemod's FTS5 expression: the prefix's hex token AND any of the quoted words.
    static func match(text: String, ns: String) -> String {
        let words = text.split(separator: " ").map { "\"" + $0 + "\"" }
        return "nskey : \"" + hex(ns) + "\" AND content : (" + words.joined(separator: " OR ") + ")"
    }

    /// The namespace in upper-case hex (one FTS5 token).
    static func hex(_ ns: some StringProtocol) -> String { ns.utf8.map { String(format: "%02X", $0) }.joined() }

    /// What mnemod writes into `nskey`: the token of the namespace and of each ancestor.
    static func namespaceKeys(_ ns: String) -> String {
        var keys: [String] = []
        var prefix = ""
        for segment in ns.split(separator: "/") {
            prefix += (prefix.isEmpty ? "" : "/") + segment
            keys.append(hex(prefix))
        }
        return keys.joined(separator: " ")
    }
}
