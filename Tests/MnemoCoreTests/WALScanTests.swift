import Foundation
import GRDB
import MnemoProtocol
@testable import MnemoCore
import Testing

@Suite("WAL frames: a damaged frame before committed ones is found")
struct WALScanTests {
    /// A database in WAL mode with `transactions` commits left in its WAL, copied (database
    /// and WAL) into a fresh directory while the writer still holds them.
    static func walCopy(transactions: Int, withIndex: Bool = false) throws -> (dir: String, wal: String) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mnemo-wal-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir + "/copy", withIntermediateDirectories: true)
        let pool = try DatabasePool(path: dir + "/db.sqlite")
        try pool.writeWithoutTransaction { try $0.execute(sql: "PRAGMA wal_autocheckpoint = 0") }
        try pool.write { try $0.execute(sql: "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)") }
        for i in 0..<transactions {
            try pool.write { try $0.execute(sql: "INSERT INTO t (v) VALUES (?)", arguments: [String(repeating: "x\(i)", count: 300)]) }
        }
        for f in ["db.sqlite", "db.sqlite-wal"] + (withIndex ? ["db.sqlite-shm"] : []) { try FileManager.default.copyItem(atPath: dir + "/" + f, toPath: dir + "/copy/" + f) }
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

    static func open(_ dir: String, _ durability: Durability) throws -> SQLiteStore {
        try SQLiteStore(dir: dir + "/copy", name: "db", durability: durability, migrator: DatabaseMigrator(),
                        logger: JournalTests.quiet, nextRevision: { () throws(WireError) -> Int64 in 0 })
    }

    static func size(_ path: String) throws -> Int {
        try #require(FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
    }

    @Test("a log that ends inside a frame (a write cut short by a full disk) is not damage: every commit stays")
    func partialLastFrame() throws {
        let (dir, wal) = try Self.walCopy(transactions: 6, withIndex: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let before = WALScan(path: wal, index: dir + "/copy/db.sqlite-shm")
        let handle = try #require(FileHandle(forWritingAtPath: wal))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(repeating: 0x5A, count: 3000))  // header and part of a page
        try handle.close()
        let scan = WALScan(path: wal, index: dir + "/copy/db.sqlite-shm")
        #expect(scan.indexedFrames == before.validFrames && scan.validFrames == before.validFrames)
        #expect(scan.missingFrames == 0 && scan.problem(wal) == nil)
        let store = try Self.open(dir, .strict)
        let rows = try store.writer.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM t") }
        #expect(rows == 6)
    }

    @Test("a log cut after committed frames its index records: strict refuses, normal opens (a power loss explains it), repair lets strict open")
    func cutCommittedFrames() throws {
        let (dir, wal) = try Self.walCopy(transactions: 12, withIndex: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let index = dir + "/copy/db.sqlite-shm"
        let whole = WALScan(path: wal, index: index)
        #expect(whole.indexedFrames == whole.validFrames && whole.validFrames > 6)
        try FileManager.default.copyItem(atPath: dir + "/copy", toPath: dir + "/normal")
        let cut = 32 + (whole.validFrames / 2) * (24 + 4096) + 1000
        #expect(truncate(wal, off_t(cut)) == 0)
        let scan = WALScan(path: wal, index: index)
        #expect(scan.damage == nil && scan.missingFrames == whole.validFrames - scan.validFrames && scan.missingFrames > 0)
        #expect(scan.problem(wal, indexIsProof: true) != nil && scan.problem(wal, indexIsProof: false) == nil)
        #expect(DataCheck.wal(wal, index: index)?.severity == .recoverable)
        #expect(throws: StorageError.self) { _ = try Self.open(dir, .strict) }
        #expect(FileManager.default.fileExists(atPath: index))  // nothing changed by the refusal
        _ = try DataRepair.cutWAL(wal)
        let store = try Self.open(dir, .strict)
        let rows = try store.writer.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM t") } ?? 12
        #expect(rows < 12)
        // The same cut in normal mode: it opens (and logs the loss).
        let normalWAL = dir + "/normal/db.sqlite-wal"
        #expect(truncate(normalWAL, off_t(cut)) == 0)
        _ = try SQLiteStore(dir: dir + "/normal", name: "db", durability: .normal, migrator: DatabaseMigrator(),
                            logger: JournalTests.quiet, nextRevision: { () throws(WireError) -> Int64 in 0 })
    }

    @Test("a flipped bit in the last committed frame, with the index: lost commits, not a torn tail")
    func flippedLastCommittedFrame() throws {
        let (dir, wal) = try Self.walCopy(transactions: 5, withIndex: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.flip(wal, at: try Self.size(wal) - 10)
        let scan = WALScan(path: wal, index: dir + "/copy/db.sqlite-shm")
        #expect(scan.damage == nil && scan.missingFrames >= 1)
        #expect(throws: StorageError.self) { _ = try Self.open(dir, .strict) }
    }

    @Test("an index whose two header copies disagree, or beside a log whose header fails, is not read")
    func foreignIndex() throws {
        let (dir, wal) = try Self.walCopy(transactions: 3, withIndex: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let index = dir + "/copy/db.sqlite-shm"
        try Self.flip(index, at: 20)  // in the first copy only: the two copies disagree
        #expect(WALScan(path: wal, index: index).indexedFrames == nil)
        try Self.flip(index, at: 20)
        #expect(WALScan(path: wal, index: index).indexedFrames != nil)
        try Self.flip(wal, at: 17)  // the log header's salt: the header fails its checksum too
        #expect(WALScan(path: wal, index: index).indexedFrames == nil)
    }
}
