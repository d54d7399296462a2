import CSQLiteSession
import Foundation
import GRDB

/// What one transaction changed in an SQLite tier, as SQLite's session extension records
/// it (a changeset: per changed row of a table, its operation, its old and new values):
/// how a cluster node's writes to the episodic and semantic tiers reach the other nodes,
/// which apply it to their own copy of the database.
///
/// Recorded over the tables of record only: tables kept by triggers or by the tier from
/// others (the keyword indexes, per-principal usage, `mnemo_meta`) are left out and
/// re-derived where the changeset is applied, by the same triggers or by the tier
/// (``ReplicatedTier/replicated(_:in:)``).
struct Changeset: Sendable {
    let bytes: [UInt8]

    /// A recording under way on a connection's open transaction.
    final class Recording {
        private var session: UnsafeMutableRawPointer?

        /// Starts recording the changes made through `db` to its tables, but those whose
        /// name starts with one of `excluded`.
        init(_ db: Database, excluding excluded: [String]) throws(ChangesetError) {
            guard let connection = db.sqliteConnection else { throw ChangesetError("no SQLite connection to record on") }
            var rc: Int32 = 0
            let names = excluded.map { strdup($0) }
            defer { names.forEach { free($0) } }
            let pointers = names.map { UnsafePointer($0) }
            session = pointers.withUnsafeBufferPointer { p in
                mnemo_session_start(connection, p.baseAddress, Int32(p.count), &rc)
            }
            guard session != nil else { throw ChangesetError("cannot record changes (SQLite error \(rc))") }
        }

        /// Ends the recording: what was changed (empty when nothing was).
        func finish() throws(ChangesetError) -> Changeset {
            guard let s = session else { return Changeset(bytes: []) }
            session = nil
            var n: Int32 = 0
            var out: UnsafeMutableRawPointer?
            let rc = mnemo_session_finish(s, &n, &out)
            defer { mnemo_free(out) }
            guard rc == 0 else { throw ChangesetError("cannot read the recorded changes (SQLite error \(rc))") }
            guard let out, n > 0 else { return Changeset(bytes: []) }
            return Changeset(bytes: Array(UnsafeRawBufferPointer(start: out, count: Int(n))))
        }

        /// A recording never finished (its write failed) is ended and dropped.
        deinit { _ = try? finish() }
    }

    var isEmpty: Bool { bytes.isEmpty }

    /// Applies the changes to `db`, inside its open transaction. A deletion of a row that
    /// is already gone (a trigger deleted it with its parent) is skipped; any other
    /// conflict means the database is not in the state the changes were recorded on.
    /// - Throws: when it cannot be applied (nothing of it is).
    func apply(to db: Database) throws(ChangesetError) {
        guard let connection = db.sqliteConnection else { throw ChangesetError("no SQLite connection to apply to") }
        let rc = bytes.withUnsafeBytes { mnemo_changeset_apply(connection, Int32($0.count), $0.baseAddress) }
        guard rc == 0 else {
            throw ChangesetError(rc == 4 ? "its SQLite changes do not fit this node's database (a row differs)" : "SQLite error \(rc) applying its changes")
        }
    }

    /// The rows it changes, in its order (table by table).
    func rows() throws(ChangesetError) -> [RowChange] {
        var out: [RowChange] = []
        var failure: Int32 = 0
        bytes.withUnsafeBytes { raw in
            var rc: Int32 = 0
            guard let it = mnemo_changeset_start(Int32(raw.count), raw.baseAddress, &rc) else { failure = rc; return }
            defer { mnemo_changeset_finish(it) }
            var table: UnsafePointer<CChar>?
            var op: Int32 = 0
            var ncol: Int32 = 0
            while true {
                let step = mnemo_changeset_next(it, &table, &op, &ncol)
                if step <= 0 { failure = -step; return }
                let kind: RowChange.Op = op == 18 ? .insert : op == 9 ? .delete : .update
                func values(_ new: Int32) -> [DatabaseValue?] {
                    (0..<ncol).map { col in
                        var i: Int64 = 0
                        var d: Double = 0
                        var bytes: UnsafeRawPointer?
                        var len: Int32 = 0
                        switch mnemo_changeset_value(it, new, col, &i, &d, &bytes, &len) {
                        case 1: return i.databaseValue
                        case 2: return d.databaseValue
                        case 3: return String(decoding: UnsafeRawBufferPointer(start: bytes, count: Int(len)), as: UTF8.self).databaseValue
                        case 4: return (bytes.map { Data(bytes: $0, count: Int(len)) } ?? Data()).databaseValue
                        case 5: return .null
                        default: return nil
                        }
                    }
                }
                out.append(RowChange(table: String(cString: table!), op: kind,
                                     old: kind == .insert ? [] : values(0), new: kind == .delete ? [] : values(1)))
            }
        }
        guard failure == 0 else { throw ChangesetError("its SQLite changes cannot be read (SQLite error \(failure))") }
        return out
    }
}

/// A changeset that could not be recorded, read or applied (with SQLite's result code).
struct ChangesetError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// One row a changeset changes. Values are by column position (the table's declared
/// order); nil where the changeset holds none (an update's unchanged columns).
struct RowChange: Sendable {
    enum Op: Sendable { case insert, delete, update }
    var table: String
    var op: Op
    /// The row before (deletions: every column; updates: the primary key and the changed ones).
    var old: [DatabaseValue?]
    /// The row after (insertions: every column; updates: the changed ones).
    var new: [DatabaseValue?]
}

/// An SQLite tier whose writes a cluster node replicates through the change feed.
protocol ReplicatedTier: AnyObject, Sendable {
    /// Its database.
    var database: SQLiteStore { get }
    /// Tables not recorded: kept by triggers or by the tier, re-derived where applied.
    static var derivedTables: [String] { get }
    /// Called in the transaction that applied another node's changes: re-derives what the
    /// tier keeps in code, and returns what brings its memory (vector matrices, counters)
    /// up to the database once the transaction has committed.
    func replicated(_ changes: [RowChange], in db: Database) throws -> () -> Void
}

extension Array where Element == DatabaseValue? {
    /// The value of column `name` of `table` (nil when absent or NULL).
    subscript<T: DatabaseValueConvertible>(_ columns: [String: Int], _ name: String) -> T? {
        guard let i = columns[name], i < count, let v = self[i] else { return nil }
        return T.fromDatabaseValue(v)
    }
}

extension Changeset {
    /// Column positions of `table` (a changeset's values are by position).
    static func columns(_ table: String, in db: Database) throws -> [String: Int] {
        var out: [String: Int] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT cid, name FROM pragma_table_info(?)", arguments: [table]) {
            out[row[1]] = row[0]
        }
        return out
    }
}
