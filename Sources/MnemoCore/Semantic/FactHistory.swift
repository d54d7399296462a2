import GRDB

/// The past versions of semantic records, in `fact_versions` (on disk only; the
/// in-memory collections hold live versions).
///
/// A version is moved there when its record is written again (an upsert with the same id,
/// or a `merge`), with its validity closed where the next version begins
/// (``SemanticRecord/closed(at:)``); the newest `max_fact_versions` per record are kept,
/// and they go with their record (`sem.delete`, TTL). Its `seq` is minus its revision, so
/// that one keyword index covers `facts` and `fact_versions` (the view `fact_texts`).
enum FactHistory {
    /// `seq` of a version row: unique, since a revision is, and never a `facts` seq (positive).
    static func seq(ofVersion version: Int64) -> Int64 { -version }

    /// SQL true when the row `alias` held at `?` (bound twice): `valid_from <= t < valid_to`.
    static func validAt(_ alias: String) -> String {
        "coalesce(\(alias).valid_from, \(alias).at) <= ? AND (\(alias).valid_to IS NULL OR \(alias).valid_to > ?)"
    }

    /// Moves the live row of `old` into the history, valid until `closedAt`, and drops the
    /// versions of its record past the newest `max` (none kept with 0).
    static func keep(_ old: SemanticRecord, closedAt: Int64, in db: Database, max: Int,
                     index: inout KeywordIndexChanges) throws {
        guard max > 0 else { return }
        let seq = seq(ofVersion: old.version)
        try db.cachedStatement(sql: """
            INSERT INTO fact_versions (seq, \(SemanticStore.columns), vector, nskey)
            SELECT ?, \(SemanticStore.columns), vector, nskey FROM facts WHERE ns = ? AND id = ?
            """).execute(arguments: [seq, old.ns, old.id])
        try db.cachedStatement(sql: "UPDATE fact_versions SET valid_to = ? WHERE seq = ?").execute(arguments: [closedAt, seq])
        index.inserted(seq: seq)
        let past = try Row.fetchAll(db.cachedStatement(sql: """
            SELECT seq, text, nskey FROM fact_versions WHERE ns = ? AND id = ? ORDER BY version DESC LIMIT -1 OFFSET ?
            """), arguments: [old.ns, old.id, max])
        try drop(past, in: db, index: &index)
    }

    /// Drops every past version of a record (it is deleted or expired).
    static func forget(ns: String, id: String, in db: Database, index: inout KeywordIndexChanges) throws {
        let rows = try Row.fetchAll(db.cachedStatement(sql: "SELECT seq, text, nskey FROM fact_versions WHERE ns = ? AND id = ?"),
                                    arguments: [ns, id])
        try drop(rows, in: db, index: &index)
    }

    private static func drop(_ rows: [Row], in db: Database, index: inout KeywordIndexChanges) throws {
        for row in rows {
            let seq: Int64 = row["seq"]
            try db.cachedStatement(sql: "DELETE FROM fact_versions WHERE seq = ?").execute(arguments: [seq])
            index.deleted(seq: seq, text: row["text"], nskey: row["nskey"])
        }
    }

    /// The past versions of a record, newest first.
    static func versions(ns: String, id: String, in db: Database) throws -> [SemanticRecord] {
        try Row.fetchAll(db.cachedStatement(sql: """
            SELECT \(SemanticStore.columns) FROM fact_versions WHERE ns = ? AND id = ? ORDER BY version DESC
            """), arguments: [ns, id]).map(pastRecord)
    }

    /// The newest past version of a record that held at `t`, if any.
    static func version(ns: String, id: String, asOf t: Int64, in db: Database) throws -> SemanticRecord? {
        try Row.fetchOne(db.cachedStatement(sql: """
            SELECT \(SemanticStore.columns) FROM fact_versions v WHERE ns = ? AND id = ? AND \(validAt("v"))
            ORDER BY version DESC LIMIT 1
            """), arguments: [ns, id, t, t]).map(pastRecord)
    }

    /// The past versions in namespace `ns` a search may rank, with their raw vectors: with
    /// `asOf`, per record the newest version that held then, unless its live version
    /// (`live`, which answers for records live and not expired) held then too; without,
    /// every version. Versions of records gone or expired are never candidates.
    static func candidates(ns: String, asOf: Int64?, live: (String) -> SemanticRecord?, in db: Database) throws
        -> [(record: SemanticRecord, vector: [Float])] {
        var sql = "SELECT \(SemanticStore.columns), vector FROM fact_versions v WHERE ns = ?"
        var arguments: StatementArguments = [ns]
        if let asOf {
            sql += " AND \(validAt("v"))"
            arguments += [asOf, asOf]
        }
        sql += " ORDER BY id, version DESC"
        var out: [(record: SemanticRecord, vector: [Float])] = []
        var lastID: String?
        for row in try Row.fetchAll(db, sql: sql, arguments: arguments) {
            let r = try pastRecord(row)
            guard let current = live(r.id) else { continue }
            if let asOf {
                // One version per record: the newest that held then (rows come newest first).
                if r.id == lastID || current.isValid(at: asOf) { continue }
                lastID = r.id
            }
            out.append((r, VectorCodec.fromLittleEndian(row["vector"])))
        }
        return out
    }

    private static func pastRecord(_ row: Row) throws -> SemanticRecord {
        var r = try SemanticStore.record(row)
        r.isCurrent = false
        return r
    }
}
