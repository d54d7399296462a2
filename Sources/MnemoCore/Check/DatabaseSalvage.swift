import Foundation
import GRDB
import MnemoProtocol

/// The readable rows of a damaged SQLite database, into a new file that replaces it (the
/// caller kept a copy): a row-by-row copy through the page checksums, else (when not even
/// the schema can be read) SQLite's own `.recover` through the `sqlite3` tool. Then the full-text indexes are rebuilt from their tables and per-principal usage
/// is recounted, so the salvaged file is consistent for mnemod.
enum DatabaseSalvage {
    static let sqlite3Tool = "/usr/bin/sqlite3"

    static func run(_ path: String) throws(StorageError) -> DataRepair.Action {
        _ = PageChecksums.installed
        let before = rowCounts(path)
        let salvaged = path + ".salvage"
        try? FileManager.default.removeItem(atPath: salvaged)
        // The row-by-row copy reads through the page checksums, so a damaged row is left
        // out, never copied wrong; `.recover` (which reads without them) is for a file whose
        // schema cannot be read at all.
        var method = "row-by-row copy"
        do {
            try copyRows(path, into: salvaged)
        } catch {
            method = "sqlite3 .recover"
            try? FileManager.default.removeItem(atPath: salvaged)
            guard recoverWithTool(path, into: salvaged) else { throw error }
        }
        try finish(salvaged)
        let after = rowCounts(salvaged)
        for suffix in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        guard rename(salvaged, path) == 0 else {
            throw StorageError("cannot move the salvaged database into place at \(path): \(String(cString: strerror(errno)))")
        }
        var tables: [JSON] = []
        var lines: [String] = []
        for (table, n) in after.sorted(by: { $0.key < $1.key }) where !table.hasSuffix("_fts") {
            let was = before[table]
            tables.append(.object([JSONMember("table", .string(table)), JSONMember("rows_after", .int(Int64(n))),
                                   JSONMember("rows_before", was.map { .int(Int64($0)) } ?? .null)]))
            if ["episodes", "facts", "episode_vectors", "audit"].contains(table) || table == "lost_and_found" {
                lines.append("\(table) \(was.map { "\($0) -> " } ?? "")\(n)")
            }
        }
        return DataRepair.Action(file: path, summary: "salvaged with \(method): " + lines.joined(separator: ", "),
                                 detail: [JSONMember("method", .string(method)), JSONMember("tables", .array(tables))])
    }

    /// Rows per table, as far as they can be counted (a damaged table is left out).
    static func rowCounts(_ path: String) -> [String: Int] {
        var config = Configuration()
        config.readonly = true
        guard let db = try? DatabaseQueue(path: path, configuration: config) else { return [:] }
        defer { try? db.close() }
        var out: [String: Int] = [:]
        let tables = (try? db.read { try String.fetchAll($0, sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'") }) ?? []
        for t in tables {
            if let n = try? db.read({ try Int.fetchOne($0, sql: "SELECT count(*) FROM \"\(t)\"") }) { out[t] = n ?? 0 }
        }
        return out
    }

    /// `sqlite3 DAMAGED .recover | sqlite3 NEW`; false when the tool is missing or fails.
    static func recoverWithTool(_ path: String, into target: String) -> Bool {
        guard FileManager.default.isExecutableFile(atPath: sqlite3Tool) else { return false }
        let dump = Process()
        dump.executableURL = URL(fileURLWithPath: sqlite3Tool)
        dump.arguments = [path, ".recover"]
        let load = Process()
        load.executableURL = URL(fileURLWithPath: sqlite3Tool)
        load.arguments = [target]
        let pipe = Pipe()
        dump.standardOutput = pipe
        load.standardInput = pipe
        dump.standardError = FileHandle.nullDevice
        load.standardOutput = FileHandle.nullDevice
        load.standardError = FileHandle.nullDevice
        do {
            try load.run()
            try dump.run()
        } catch {
            return false
        }
        dump.waitUntilExit()
        load.waitUntilExit()
        return dump.terminationStatus == 0 && load.terminationStatus == 0 && FileManager.default.fileExists(atPath: target)
    }

    /// Copies every readable row of every ordinary table, in rowid order, stepping over
    /// stretches that cannot be read (a damaged page costs its rows); then the schema's
    /// virtual tables, indexes and triggers.
    static func copyRows(_ path: String, into target: String) throws(StorageError) {
        do {
            var config = Configuration()
            config.readonly = true
            let source = try DatabaseQueue(path: path, configuration: config)
            defer { try? source.close() }
            let dest = try DatabaseQueue(path: target)
            defer { try? dest.close() }
            let schema = try source.read { try Row.fetchAll($0, sql: "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL") }
            let shadow = Set(schema.filter { ($0["sql"] as String).uppercased().contains("CREATE VIRTUAL TABLE") }.flatMap { row -> [String] in
                let name: String = row["name"]
                return ["data", "idx", "content", "docsize", "config"].map { name + "_" + $0 }
            })
            let tables = schema.filter { $0["type"] == "table" && !($0["sql"] as String).uppercased().contains("CREATE VIRTUAL TABLE")
                && !shadow.contains($0["name"]) && !($0["name"] as String).hasPrefix("sqlite_") }
            for t in tables {
                let name: String = t["name"]
                try dest.write { try $0.execute(sql: t["sql"]) }
                let withoutRowid = (t["sql"] as String).uppercased().contains("WITHOUT ROWID")
                if withoutRowid {
                    if let rows = try? source.read({ try Row.fetchAll($0, sql: "SELECT * FROM \"\(name)\"") }) {
                        try insert(rows, into: name, dest)
                    }
                    continue
                }
                try copyByRowid(name, from: source, into: dest)
            }
            for item in schema where item["type"] != "table" || (item["sql"] as String).uppercased().contains("CREATE VIRTUAL TABLE") {
                let name: String = item["name"]
                if shadow.contains(name) || name.hasPrefix("sqlite_") { continue }
                try? dest.write { try $0.execute(sql: item["sql"]) }
            }
        } catch {
            throw StorageError("cannot copy the readable rows of \(path): \(error)")
        }
    }

    /// Copies `table`'s readable rows in rowid order. Where a read fails (a damaged page),
    /// it copies the rows before the damage (halving the chunk), then finds the first rowid
    /// readable after it (doubling the jump, then bisecting back), so a damaged page costs
    /// about its own rows.
    private static func copyByRowid(_ table: String, from source: DatabaseQueue, into dest: DatabaseQueue) throws {
        func rows(from start: Int64, limit: Int) -> [Row]? {
            try? source.read { try Row.fetchAll($0, sql: "SELECT rowid AS _rowid_, * FROM \"\(table)\" WHERE rowid >= ? ORDER BY rowid LIMIT \(limit)",
                                                arguments: [start]) }
        }
        var start = Int64.min
        while true {
            var limit = 256
            var chunk = rows(from: start, limit: limit)
            while chunk == nil && limit > 1 {
                limit /= 2
                chunk = rows(from: start, limit: limit)
            }
            if let chunk {
                guard let last = chunk.last else { return }
                try insert(chunk, into: table, dest, rowid: true)
                let lastRowid: Int64 = last["_rowid_"]
                guard lastRowid < Int64.max else { return }
                start = lastRowid + 1
                continue
            }
            // `start` lies in the damage: jump ahead until a read succeeds, then bisect back.
            var jump: Int64 = 1
            while true {
                let (probe, overflow) = start.addingReportingOverflow(jump)
                if overflow { return }
                if rows(from: probe, limit: 1) != nil { break }
                guard jump < 1 << 62 else { return }
                jump *= 2
            }
            var bad = jump == 1 ? start : start + jump / 2  // the last start known to fail
            var good = start + jump
            while good - bad > 1 {
                let mid = bad + (good - bad) / 2
                if rows(from: mid, limit: 1) != nil { good = mid } else { bad = mid }
            }
            start = good
        }
    }

    private static func insert(_ rows: [Row], into table: String, _ dest: DatabaseQueue, rowid: Bool = false) throws {
        guard let first = rows.first else { return }
        let columns = Array(first.columnNames)
        let names = columns.map { $0 == "_rowid_" ? "rowid" : "\"\($0)\"" }.joined(separator: ", ")
        let marks = Array(repeating: "?", count: columns.count).joined(separator: ", ")
        try dest.write { db in
            let statement = try db.makeStatement(sql: "INSERT OR IGNORE INTO \"\(table)\" (\(names)) VALUES (\(marks))")
            for row in rows { try statement.execute(arguments: StatementArguments(columns.map { row[$0] as DatabaseValue })) }
        }
    }

    /// Rebuilds full-text indexes from their tables and recounts per-principal usage.
    static func finish(_ path: String) throws(StorageError) {
        do {
            let db = try DatabaseQueue(path: path)
            defer { try? db.close() }
            try db.write { db in
                for fts in ["episodes_fts", "facts_fts"] where try db.tableExists(fts) {
                    try db.execute(sql: "INSERT INTO \(fts)(\(fts)) VALUES ('rebuild')")
                }
                for counted in [PrincipalUsage.episodes, PrincipalUsage.facts]
                where try db.tableExists("principal_usage") && db.tableExists(counted.table) {
                    try PrincipalUsage.recount(db, counted)
                }
            }
            let problems = try db.read { try String.fetchAll($0, sql: "PRAGMA integrity_check") }
            guard problems == ["ok"] else {
                throw StorageError("the salvaged database \(path) still fails integrity_check: \(problems.prefix(3).joined(separator: "; "))")
            }
        } catch let e as StorageError {
            throw e
        } catch {
            throw StorageError("cannot finish the salvaged database \(path): \(error)")
        }
    }
}
