import Foundation
@testable import MnemoCore
import MnemoProtocol
import Testing

@Suite("Journal: corruption is told from a torn tail")
struct JournalDamageTests {
    /// A log file as the journal lays it out: records in zero-filled reserved space.
    static func file(_ payloads: [String], reserved: Int = 16 << 10) -> [UInt8] {
        var bytes = payloads.flatMap { frame(Array($0.utf8)) }
        bytes += [UInt8](repeating: 0, count: max(0, reserved - bytes.count))
        return bytes
    }

    static func scan(_ bytes: [UInt8]) -> JournalScan { bytes.withUnsafeBytes { JournalScan($0) } }

    static let records = (0..<40).map { #"{"t":"ceiling","rev":\#($0)}"# }

    @Test("a clean file: every record, no damage, the zero fill is not damage")
    func clean() {
        let s = Self.scan(Self.file(Self.records))
        #expect(s.frames.count == 40 && s.damage.isEmpty && s.verdict == .clean)
    }

    @Test("a flipped byte in the middle: corruption, with every valid record on both sides found")
    func flippedByte() {
        var bytes = Self.file(Self.records)
        let offsets = Self.scan(bytes).frames.map(\.offset)
        bytes[offsets[17] + 12] ^= 0x40
        let s = Self.scan(bytes)
        #expect(s.frames.count == 39)
        guard case .corrupt(let d) = s.verdict else {
            Issue.record("not corruption: \(s.verdict)")
            return
        }
        #expect(d.offset == offsets[17] && d.recordsAfter == 22 && !d.hasZeroSector)
        #expect(d.offset + d.bytes == offsets[18])
    }

    @Test("the last record cut short or garbled: a torn tail")
    func tornTail() {
        var bytes = Self.file(Self.records)
        let last = Self.scan(bytes).frames.last!
        for i in (last.payload.lowerBound + 5)..<last.payload.upperBound { bytes[i] = 0 }
        let s = Self.scan(bytes)
        guard case .tornTail(let d) = s.verdict else {
            Issue.record("not a torn tail: \(s.verdict)")
            return
        }
        #expect(s.frames.count == 39 && d.offset == last.offset && d.recordsAfter == 0)
    }

    @Test("a zero-filled sector in the middle (a block a power loss never wrote): lost writes, not corruption")
    func zeroHole() {
        let big = (0..<40).map { #"{"t":"ceiling","rev":\#($0),"pad":"\#(String(repeating: "x", count: 300))"}"# }
        var bytes = Self.file(big)
        let frames = Self.scan(bytes).frames
        // Zero the 4 KiB page holding record 20 (as a lost page write would leave it).
        let page = frames[20].offset / 4096 * 4096
        for i in page..<(page + 4096) { bytes[i] = 0 }
        let s = Self.scan(bytes)
        guard case .lostWrites(let d) = s.verdict else {
            Issue.record("not lost writes: \(s.verdict)")
            return
        }
        #expect(d.hasZeroSector && d.recordsAfter > 0 && d.offset <= page)
    }

    @Test("resynchronizing costs no more than a pass over garbage: 1 MiB of random bytes between records")
    func garbageBetweenRecords() {
        var rng = SystemRandomNumberGenerator()
        let garbage = (0..<(1 << 20)).map { _ in UInt8.random(in: 1...255, using: &rng) }
        let bytes = Array(Self.file(Array(Self.records.prefix(5)), reserved: 0)) + garbage
            + Self.file(Array(Self.records.suffix(5)))
        let s = Self.scan(bytes)
        #expect(s.frames.count == 10)
        guard case .corrupt(let d) = s.verdict else {
            Issue.record("not corruption: \(s.verdict)")
            return
        }
        #expect(d.bytes == garbage.count && d.recordsAfter == 5)
    }

    @Test("recovery refuses a corrupt log naming file, offset, last good revision and records after it, and changes nothing")
    func recoveryRefuses() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let time = ManualTime()
        let wm = try JournalTests.open(dir, time)
        for i in 0..<50 { try wm.put("ns", "k\(i)", .int(i)) }
        wm.close()
        let log = try dir.newestLog()
        let records = try frames(log)
        try overwrite(log, at: records[25].offset + 10, with: [0xFF])
        let before = dir.files().map { ($0, FileManager.default.contents(atPath: dir.path + "/" + $0)) }
        let error = try #require(throws: StorageError.self) { try JournalTests.open(dir, time) }
        #expect(error.isCorruption)
        #expect(error.description.contains(log) && error.description.contains("at byte \(records[25].offset)"))
        #expect(error.description.contains("\(records.count - 26) valid records after it"))
        #expect(error.description.contains("last good revision before it is 24"))
        let after = dir.files().map { ($0, FileManager.default.contents(atPath: dir.path + "/" + $0)) }
        #expect(after.map(\.0) == before.map(\.0) && zip(after, before).allSatisfy { $0.1 == $1.1 })
    }

    @Test("a damaged snapshot refuses to start instead of falling back to older data")
    func damagedSnapshot() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let time = ManualTime()
        let wm = try JournalTests.open(dir, time)
        for i in 0..<20 { try wm.put("ns", "k\(i)", .int(i)) }
        wm.snapshot()
        wm.close()
        let snapshot = dir.path + "/" + (try #require(dir.files().first { $0.hasPrefix("snapshot-") }))
        let records = try frames(snapshot)
        try overwrite(snapshot, at: records[10].offset + 9, with: [0x00])
        let error = try #require(throws: StorageError.self) { try JournalTests.open(dir, time) }
        #expect(error.isCorruption && error.description.contains("snapshot"))
    }

    @Test("a torn tail in an earlier log, followed by a later log with records, is corruption")
    func tornEarlierLog() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let time = ManualTime()
        let wm = try JournalTests.open(dir, time)
        for i in 0..<5 { try wm.put("ns", "k\(i)", .int(i)) }
        wm.close()
        let first = try dir.newestLog()
        // A second log with records (what a rotation leaves before its snapshot).
        let second = first.replacingOccurrences(of: "000000000001.log", with: "000000000002.log")
        #expect(second != first)
        let tail = try #require(try frames(first).last)
        let payload = try #require(FileManager.default.contents(atPath: first)).subdata(in: tail.offset..<(tail.offset + 8 + tail.length))
        try payload.write(to: URL(fileURLWithPath: second))
        try overwrite(first, at: tail.offset + 9, with: [0x00])
        let error = try #require(throws: StorageError.self) { try JournalTests.open(dir, time) }
        #expect(error.isCorruption && error.description.contains("a later log"))
    }

    @Test("a log cut short (not whole reserved chunks) is corruption, even when the cut falls between records")
    func cutLog() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let time = ManualTime()
        let wm = try JournalTests.open(dir, time)
        for i in 0..<20 { try wm.put("ns", "k\(i)", .int(i)) }
        wm.close()
        let log = try dir.newestLog()
        let records = try frames(log)
        try #require(truncate(log, off_t(records[12].offset)) == 0)  // exactly between two records
        let error = try #require(throws: StorageError.self) { try JournalTests.open(dir, time) }
        #expect(error.isCorruption && error.description.contains("cut short"))
    }
}
