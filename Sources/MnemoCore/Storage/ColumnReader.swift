import GRDB
import GRDBSQLite

/// Columns of the current row by index, so that one decoder reads a GRDB `Row` and a raw
/// statement (``RawReaders``) alike.
protocol ColumnReader {
    func int64(_ i: Int32) -> Int64
    func double(_ i: Int32) -> Double
    /// A TEXT column; nil for NULL.
    func text(_ i: Int32) -> String?
    /// A TEXT column's UTF-8 bytes; nil for NULL.
    func bytes(_ i: Int32) -> [UInt8]?
}

extension Row: ColumnReader {
    func int64(_ i: Int32) -> Int64 { self[Int(i)] }
    func double(_ i: Int32) -> Double { self[Int(i)] }
    func text(_ i: Int32) -> String? { self[Int(i)] }
    func bytes(_ i: Int32) -> [UInt8]? { (self[Int(i)] as String?).map { Array($0.utf8) } }
}

/// The current row of a raw statement, read with the SQLite C API (no copies beyond the
/// values returned).
struct StatementColumns: ColumnReader {
    let statement: OpaquePointer

    init(_ statement: OpaquePointer) { self.statement = statement }

    func int64(_ i: Int32) -> Int64 { sqlite3_column_int64(statement, i) }
    func double(_ i: Int32) -> Double { sqlite3_column_double(statement, i) }

    func text(_ i: Int32) -> String? {
        guard let p = sqlite3_column_text(statement, i) else { return nil }
        return String(decoding: UnsafeBufferPointer(start: p, count: Int(sqlite3_column_bytes(statement, i))), as: UTF8.self)
    }

    func bytes(_ i: Int32) -> [UInt8]? {
        guard let p = sqlite3_column_text(statement, i) else { return nil }
        return Array(UnsafeBufferPointer(start: p, count: Int(sqlite3_column_bytes(statement, i))))
    }
}
