import Foundation
import GRDB
import MnemoProtocol
@testable import MnemoCore
import Testing

@Suite("WAL frames: a damaged frame before committed ones is found")
struct WALScanTests {
    /// A database in WAL mode with `transactions` commits left in its WAL, copied (database
    /// and WAL) into a fresh directory while the writer still holds them.
    static func walCopy(transactions: Int) throws -> (dir: String, wal: String) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mnemo-wal-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir + "/copy", withIntermediateDirectories: true)
        let pool = try DatabasePool(path: dir + "/db.sqlite")
        try pool.writeWithoutTransaction { try $0.execute(sql: "PRAGMA wal_autocheckpoint = 0") }
        try pool.write { try $0.execute(sql: "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)") }
        for i in 0..<transactions {
            try pool.write { try $0.execute(sql: "INSERT INTO t (v) VALUES (?)", arguments: [String(repeating: "x\(i)", count: 300)]) }
        }
        for f in ["db.sqlite", "db.sqlite-wal"] { try FileManager.default.copyItem(atPath: dir + "/" + f, toPath: dir + "/copy/" + f) }
        try pool.close()
        return (dir, dir + "/copy/db.sqlite-wal")
    }

    static func flip(_ path: String, at offset: Int) throws {
        var bytes = [UInt8](try #require(FileManager.default.contents(atPath: path)))
        bytes[offset] ^= 0x10
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    @Test("an intact WAL: every committed transaction, no damage")
    func intact() throws {
        let (dir, wal) = try Self.walCopy(transactions: 12)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let scan = WALScan(path: wal)
        // The CREATE TABLE and 12 inserts, besides what GRDB commits when it opens a pool.
        #expect(scan.validCommits >= 13 && scan.damage == nil)
    }

    @Test("a flipped bit in an early frame, with committed frames after it: damage, which SQLite alone would not report")
    func flippedEarlyFrame() throws {
        let (dir, wal) = try Self.walCopy(transactions: 12)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let pageSize = 4096
        let frames = WALScan(path: wal).validFrames
        try Self.flip(wal, at: 32 + (frames / 2) * (24 + pageSize) + 24 + 100)  // page data of a middle frame
        let scan = WALScan(path: wal)
        let d = try #require(scan.damage)
        #expect(d.frame == frames / 2 && d.commitsAfter >= 3)
        // What SQLite does with it: opens and replays up to the damage, silently.
        let copy = try DatabaseQueue(path: dir + "/copy/db.sqlite")
        let rows = try copy.read { try? Int.fetchOne($0, sql: "SELECT count(*) FROM t") } ?? 0
        #expect(rows < 12)
        // mnemod's store refuses to open it instead.
        #expect(throws: StorageError.self) {
            _ = try SQLiteStore(dir: dir + "/copy", name: "db", durability: .normal, migrator: DatabaseMigrator(),
                                logger: JournalTests.quiet, nextRevision: { () throws(WireError) -> Int64 in 0 })
        }
    }

    @Test("a flipped bit in the last frame: a torn tail, not damage")
    func flippedLastFrame() throws {
        let (dir, wal) = try Self.walCopy(transactions: 5)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let commits = WALScan(path: wal).validCommits
        let size = try #require(FileManager.default.attributesOfItem(atPath: wal)[.size] as? Int)
        try Self.flip(wal, at: size - 10)
        let scan = WALScan(path: wal)
        #expect(scan.damage == nil && scan.validCommits == commits - 1)
    }
}
