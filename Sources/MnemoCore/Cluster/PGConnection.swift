import CLibPQ
#if canImport(Glibc)
import Glibc
#endif

/// A failure talking to PostgreSQL: the server's message and SQLSTATE, or a lost
/// connection (`sqlState` nil). Mapped to `UNAVAILABLE` on the wire.
public struct PGError: Error, Sendable, CustomStringConvertible {
    /// What PostgreSQL (or libpq) said.
    public var message: String
    /// The SQLSTATE, when the server answered with an error.
    public var sqlState: String?
    /// Whether the connection is gone (then it must be reopened).
    public var connectionLost: Bool

    public var description: String { sqlState.map { "\(message) (SQLSTATE \($0))" } ?? message }
}

/// One blocking libpq connection, used by one thread at a time (its owner serializes).
///
/// libpq rather than postgres-nio: mnemod runs its own POSIX event loops and worker threads
/// and has no NIO event loop to host an async client; a blocking call on the thread that
/// decides the write is what the write path needs, and libpq is the reference client
/// (Debian's `libpq-dev`, no extra Swift dependency tree to build).
final class PGConnection {
    private var conn: OpaquePointer?

    /// Opens a connection (`conninfo` as libpq takes it; `password` overrides one in it),
    /// named `application` in `pg_stat_activity`.
    /// - Throws: ``PGError`` naming why it could not connect.
    init(conninfo: String, password: String?, application: String) throws(PGError) {
        var keys = ["dbname", "connect_timeout", "application_name"]
        var values = [conninfo, "5", application]
        if let password {
            keys.append("password")
            values.append(password)
        }
        // expand_dbname = 1: `dbname` carries the whole connection string, later keys
        // override it.
        let c: OpaquePointer? = withCStrings(keys) { k in withCStrings(values) { v in PQconnectdbParams(k, v, 1) } }
        guard let c else { throw PGError(message: "out of memory opening a PostgreSQL connection", connectionLost: true) }
        guard PQstatus(c) == CONNECTION_OK else {
            let message = String(cString: PQerrorMessage(c)).trimmingWhitespace
            PQfinish(c)
            throw PGError(message: "cannot connect to PostgreSQL: \(message)", connectionLost: true)
        }
        // Server notices (e.g. "relation already exists, skipping") are not errors; libpq
        // would print them on stderr.
        PQsetNoticeProcessor(c, { _, _ in }, nil)
        conn = c
    }

    deinit { if let conn { PQfinish(conn) } }

    /// Whether the connection is still usable.
    var isOK: Bool { conn.map { PQstatus($0) == CONNECTION_OK } ?? false }

    /// Runs one or more statements without parameters (simple protocol); the rows of the last one.
    @discardableResult
    func exec(_ sql: String) throws(PGError) -> PGRows {
        guard let conn else { throw PGError(message: "connection closed", connectionLost: true) }
        return try check(PQexec(conn, sql))
    }

    /// Runs one statement with parameters (text, or binary for `[UInt8]`), rows in text format
    /// except `bytea` columns asked for with `binaryResults`.
    @discardableResult
    func exec(_ sql: String, _ params: [PGParam], binaryResults: Bool = false) throws(PGError) -> PGRows {
        guard let conn else { throw PGError(message: "connection closed", connectionLost: true) }
        var buffers: [[UInt8]] = params.map { p in
            switch p {
            case .text(let s): return Array(s.utf8) + [0]
            case .int(let i): return Array(String(i).utf8) + [0]
            case .bytes(let b): return b
            case .null: return []
            }
        }
        let nulls = params.map { p -> Bool in if case .null = p { return true } else { return false } }
        let lengths = params.map { p -> Int32 in if case .bytes(let b) = p { return Int32(b.count) } else { return 0 } }
        let formats = params.map { p -> Int32 in if case .bytes = p { return 1 } else { return 0 } }
        let result: OpaquePointer? = buffers.withUnsafeMutableBufferPointers(nulls: nulls) { pointers in
            lengths.withUnsafeBufferPointer { l in
                formats.withUnsafeBufferPointer { f in
                    PQexecParams(conn, sql, Int32(params.count), nil, pointers, l.baseAddress, f.baseAddress,
                                 binaryResults ? 1 : 0)
                }
            }
        }
        buffers.removeAll()
        return try check(result)
    }

    /// The socket, to wait on for notifications.
    var socket: Int32 { conn.map { PQsocket($0) } ?? -1 }

    /// Reads what arrived on the socket and returns whether a notification came.
    /// - Throws: when the connection broke.
    func drainNotifications() throws(PGError) -> Bool {
        guard let conn else { throw PGError(message: "connection closed", connectionLost: true) }
        guard PQconsumeInput(conn) == 1 else {
            throw PGError(message: String(cString: PQerrorMessage(conn)).trimmingWhitespace, connectionLost: true)
        }
        var any = false
        while let n = PQnotifies(conn) {
            any = true
            PQfreemem(n)
        }
        return any
    }

    private func check(_ result: OpaquePointer?) throws(PGError) -> PGRows {
        guard let result else {
            let message = conn.map { String(cString: PQerrorMessage($0)).trimmingWhitespace } ?? "no connection"
            throw PGError(message: message, connectionLost: !isOK)
        }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK:
            return PGRows(result)
        default:
            let message = String(cString: PQresultErrorMessage(result)).trimmingWhitespace
            let state = PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) }
            PQclear(result)
            throw PGError(message: message.isEmpty ? "PostgreSQL error" : message, sqlState: state, connectionLost: !isOK)
        }
    }
}

/// A statement parameter.
enum PGParam {
    case text(String)
    case int(Int64)
    /// Sent in binary (a `bytea`).
    case bytes([UInt8])
    /// SQL NULL.
    case null

    /// The text, or NULL.
    static func text(_ s: String?) -> PGParam { s.map { .text($0) } ?? .null }
    /// The integer, or NULL.
    static func int(_ i: Int64?) -> PGParam { i.map { .int($0) } ?? .null }
}

/// The rows of one result (freed with it).
final class PGRows {
    private let result: OpaquePointer

    init(_ result: OpaquePointer) { self.result = result }
    deinit { PQclear(result) }

    var count: Int { Int(PQntuples(result)) }

    func isNull(_ row: Int, _ col: Int) -> Bool { PQgetisnull(result, Int32(row), Int32(col)) == 1 }

    func text(_ row: Int, _ col: Int) -> String { String(cString: PQgetvalue(result, Int32(row), Int32(col))) }

    func int(_ row: Int, _ col: Int) -> Int64 { Int64(text(row, col)) ?? 0 }

    /// A column's raw bytes (a `bytea` in a binary result).
    func bytes(_ row: Int, _ col: Int) -> [UInt8] {
        let n = Int(PQgetlength(result, Int32(row), Int32(col)))
        guard n > 0, let p = PQgetvalue(result, Int32(row), Int32(col)) else { return [] }
        return p.withMemoryRebound(to: UInt8.self, capacity: n) { Array(UnsafeBufferPointer(start: $0, count: n)) }
    }
}

private func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
    let copies = strings.map { strdup($0) }
    defer { for c in copies { free(c) } }
    let pointers = copies.map { UnsafePointer($0) } + [nil]
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}

extension Array where Element == [UInt8] {
    /// Calls `body` with a C array of pointers to each element's bytes (NULL where `nulls`
    /// says so: libpq's SQL NULL).
    fileprivate mutating func withUnsafeMutableBufferPointers<R>(nulls: [Bool],
                                                                 _ body: (UnsafePointer<UnsafePointer<CChar>?>?) -> R) -> R {
        var pointers: [UnsafePointer<CChar>?] = []
        pointers.reserveCapacity(count)
        func nest(_ i: Int) -> R {
            if i == count { return pointers.withUnsafeBufferPointer { body($0.baseAddress) } }
            if nulls[i] {
                pointers.append(nil)
                return nest(i + 1)
            }
            return self[i].withUnsafeBufferPointer { b in
                pointers.append(b.baseAddress.map { UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self) })
                return nest(i + 1)
            }
        }
        return nest(0)
    }
}

extension String {
    fileprivate var trimmingWhitespace: String {
        var s = Substring(self)
        while let c = s.last, c.isWhitespace { s.removeLast() }
        while let c = s.first, c.isWhitespace { s.removeFirst() }
        return String(s)
    }
}
