import GRDB

/// Records and bytes per principal of one SQLite table (`principal_usage`), kept by
/// triggers in the same transaction as every insert and delete, whatever makes them
/// (appends, upserts that replace, pruning, expiry, imports): what per-principal quotas
/// are checked against and `admin.stats` shows. The `principal` column is the
/// provenance of the row, so a record is charged to whoever wrote it.
enum PrincipalUsage {
    /// A table whose rows are counted, and the SQL expression over `$` (a row: `new`, `old`
    /// or the table itself) giving a row's bytes.
    struct Counted: Sendable {
        let table: String
        let bytes: String
    }
    /// Episodic records: content and data.
    static let episodes = Counted(table: "episodes", bytes: "length(CAST($.content AS BLOB)) + coalesce(length(CAST($.data AS BLOB)), 0)")
    /// Semantic facts: text and data.
    static let facts = Counted(table: "facts", bytes: "length(CAST($.text AS BLOB)) + coalesce(length(CAST($.data AS BLOB)), 0)")

    /// Creates the table for `counted`, fills it from the rows there, and adds the triggers.
    static func install(_ db: Database, _ counted: Counted) throws {
        let table = counted.table
        let newBytes = counted.bytes.replacingOccurrences(of: "$", with: "new")
        let oldBytes = counted.bytes.replacingOccurrences(of: "$", with: "old")
        try db.execute(sql: """
            CREATE TABLE principal_usage (
              principal TEXT PRIMARY KEY, records INTEGER NOT NULL, bytes INTEGER NOT NULL) STRICT, WITHOUT ROWID;
            """)
        try recount(db, counted)
        try db.execute(sql: """
            CREATE TRIGGER \(table)_usage_insert AFTER INSERT ON \(table) BEGIN
              INSERT INTO principal_usage VALUES (new.principal, 1, \(newBytes))
              ON CONFLICT(principal) DO UPDATE SET records = records + 1, bytes = bytes + excluded.bytes;
            END;
            CREATE TRIGGER \(table)_usage_delete AFTER DELETE ON \(table) BEGIN
              UPDATE principal_usage SET records = records - 1, bytes = bytes - (\(oldBytes)) WHERE principal = old.principal;
            END;
            """)
    }

    /// Counts `counted`'s rows per principal afresh (after a salvage).
    static func recount(_ db: Database, _ counted: Counted) throws {
        let rowBytes = counted.bytes.replacingOccurrences(of: "$.", with: "")
        try db.execute(sql: """
            DELETE FROM principal_usage;
            INSERT INTO principal_usage SELECT principal, count(*), coalesce(sum(\(rowBytes)), 0) FROM \(counted.table) GROUP BY principal;
            """)
    }

    /// `principal`'s records and bytes.
    static func of(_ db: Database, _ principal: String) throws -> (records: Int, bytes: Int) {
        guard let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT records, bytes FROM principal_usage WHERE principal = ?"),
                                         arguments: [principal]) else { return (0, 0) }
        return (row[0], row[1])
    }

    /// Every principal's records and bytes (those with none left out).
    static func all(_ db: Database) throws -> [String: (records: Int, bytes: Int)] {
        var out: [String: (records: Int, bytes: Int)] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT principal, records, bytes FROM principal_usage WHERE records > 0") {
            out[row[0]] = (row[1], row[2])
        }
        return out
    }
}
