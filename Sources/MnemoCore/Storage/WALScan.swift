import Foundation

/// The frames of an SQLite write-ahead log (`*.sqlite-wal`), checked as SQLite's recovery
/// checks them, plus what SQLite does not say: whether valid frames follow a damaged one.
///
/// SQLite replays a WAL's frames while their salts match the header's and their running
/// checksum holds, and silently stops at the first that fails: every transaction committed
/// after a flipped bit would vanish without a word. So before a database is opened, each
/// frame after a failing one is checked on its own (its checksum seeded with the one its
/// predecessor stored): a damaged frame with intact frames after it is corruption, and the
/// store refuses to open rather than lose what those frames committed; a damaged last
/// frame is a torn write, which SQLite drops as it should, unless the WAL-index says it
/// was committed (below).
/// Frames with other salts are left over from before a checkpoint restarted the log.
///
/// A log that ends early is not damage by its length: a write cut short by a crash or a
/// full disk leaves part of an uncommitted frame, just as a cut file would. What tells them
/// apart is the WAL-index (`-shm`), where SQLite records each commit after the frames are
/// written (and, in `strict` mode, synced): when it describes this log and records more
/// committed frames than remain intact, transactions were lost after they committed.
///
/// Layout (sqlite.org/fileformat.html#the_write_ahead_log): a 32-byte header (magic,
/// version, page size, checkpoint sequence, salt-1, salt-2, checksum-1, checksum-2, all
/// big-endian), then frames of a 24-byte header (page number, database size after a
/// commit or 0, salt-1, salt-2, checksum-1, checksum-2) and one page. Checksums run over
/// 32-bit words taken big-endian when the magic's low bit is set, else little-endian.
public struct WALScan: Sendable {
    /// Frames SQLite will replay.
    public var validFrames = 0
    /// Committed transactions among them.
    public var validCommits = 0
    /// The first frame that fails, when intact frames of this log follow it.
    public var damage: Damage?
    /// The frames the WAL-index (`*-shm`) records as committed, when it was read, its header
    /// is intact and it describes this log (the same salts); nil otherwise.
    public var indexedFrames: Int?
    /// Where whole frames end. A log need not end there: a write cut short (a crash, a full
    /// disk) leaves part of a frame that was never committed, which SQLite ignores.
    public var wholeFramesEnd = 0

    /// Committed frames the WAL-index records that the log no longer holds intact: the log
    /// was cut or damaged after they were committed. In `strict` mode SQLite syncs the log
    /// before it records a commit in the index, so this is damage; in `normal` mode the log
    /// is synced about once a second and a power loss can leave the index ahead of it.
    public var missingFrames: Int { max(0, (indexedFrames ?? 0) - validFrames) }

    /// What is wrong, for a refusal or a report; nil when nothing is. `indexIsProof` says
    /// whether frames the index records but the log lacks are damage (`strict`) or may be a
    /// power loss's (`normal`; then `loss` describes them).
    public func problem(_ wal: String, indexIsProof: Bool = true) -> String? {
        if let d = damage { return Self.refusal(wal, d) }
        if missingFrames > 0, indexIsProof { return lossDescription(wal) + Self.refuse }
        return nil
    }

    /// Committed frames that are gone, described; nil when none are.
    public func loss(_ wal: String) -> String? { missingFrames > 0 ? lossDescription(wal) : nil }

    private func lossDescription(_ wal: String) -> String {
        "\(wal) holds \(validFrames) intact committed frames, but its WAL-index recorded \(indexedFrames ?? 0) committed: the log was cut or damaged after \(missingFrames) committed frame(s), and the transactions in them are gone"
    }

    static let refuse = "; the database is not opened and nothing on disk was changed. `mnemo repair --data-dir DIR` keeps a copy, reports the loss and lets the database open with what remains"

    public struct Damage: Sendable, Equatable {
        /// Its index (from 0) and byte offset.
        public var frame: Int
        public var offset: Int
        /// Intact frames after it, and the committed transactions they end.
        public var framesAfter: Int
        public var commitsAfter: Int
    }

    /// The refusal to open a database whose WAL is damaged before committed frames.
    public static func refusal(_ wal: String, _ d: Damage) -> String {
        "\(wal): frame \(d.frame) at byte \(d.offset) fails its checksum, yet \(d.framesAfter) intact frames ending \(d.commitsAfter) committed transaction(s) follow it; SQLite would drop them without a word, so the database is not opened and nothing on disk was changed. `mnemo repair --data-dir DIR` keeps a copy and cuts the log before the damage (those transactions are reported lost)"
    }

    /// Scans the WAL at `path`, and reads the WAL-index at `index` (the `-shm` file) when
    /// given: only while no process has the database open, or the index may be mid-update.
    /// An absent, empty or headerless log scans as empty.
    public init(path: String, index: String? = nil) {
        let header = index.flatMap(Self.indexHeader)
        guard let data = FileManager.default.contents(atPath: path), data.count >= 32 else {
            indexedFrames = header?.frames   // a log cut before its header lost every indexed frame
            return
        }
        let bytes = [UInt8](data)
        func be32(_ at: Int) -> UInt32 {
            UInt32(bytes[at]) << 24 | UInt32(bytes[at + 1]) << 16 | UInt32(bytes[at + 2]) << 8 | UInt32(bytes[at + 3])
        }
        let magic = be32(0)
        guard magic == 0x377F_0682 || magic == 0x377F_0683 else { return }
        let bigEndian = magic & 1 == 1
        let pageSize = Int(be32(8))
        guard pageSize >= 512, pageSize <= 65536, pageSize & (pageSize - 1) == 0 else { return }
        func checksum(_ range: Range<Int>, seed: (UInt32, UInt32)) -> (UInt32, UInt32) {
            var (s0, s1) = seed
            var i = range.lowerBound
            while i + 8 <= range.upperBound {
                let a: UInt32, b: UInt32
                if bigEndian {
                    a = be32(i)
                    b = be32(i + 4)
                } else {
                    a = UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24
                    b = UInt32(bytes[i + 4]) | UInt32(bytes[i + 5]) << 8 | UInt32(bytes[i + 6]) << 16 | UInt32(bytes[i + 7]) << 24
                }
                s0 = s0 &+ a &+ s1
                s1 = s1 &+ b &+ s0
                i += 8
            }
            return (s0, s1)
        }
        guard checksum(0..<24, seed: (0, 0)) == (be32(24), be32(28)) else { return }  // SQLite ignores such a log whole
        let salts = (be32(16), be32(20))
        if let header, header.salts == Array(bytes[16..<24]) { indexedFrames = header.frames }
        let frameSize = 24 + pageSize
        let frames = (bytes.count - 32) / frameSize
        wholeFramesEnd = 32 + frames * frameSize
        func offset(_ k: Int) -> Int { 32 + k * frameSize }
        func stored(_ k: Int) -> (UInt32, UInt32) { (be32(offset(k) + 16), be32(offset(k) + 20)) }
        func intact(_ k: Int, seed: (UInt32, UInt32)) -> Bool {
            let o = offset(k)
            guard (be32(o + 8), be32(o + 12)) == salts else { return false }
            let s = checksum(o..<(o + 8), seed: seed)
            return checksum((o + 24)..<(o + frameSize), seed: s) == stored(k)
        }
        var seed = (be32(24), be32(28))
        var k = 0
        var pending = 0  // frames of a transaction not yet committed
        while k < frames, intact(k, seed: seed) {
            seed = stored(k)
            pending += 1
            if be32(offset(k) + 4) != 0 {
                validFrames += pending
                validCommits += 1
                pending = 0
            }
            k += 1
        }
        // SQLite replays whole transactions only; frames after the last commit are dropped.
        guard k < frames else { return }
        var after = 0
        var commits = 0
        for j in (k + 1)..<frames where intact(j, seed: stored(j - 1)) {
            after += 1
            if be32(offset(j) + 4) != 0 { commits += 1 }
        }
        if commits > 0 { damage = Damage(frame: k, offset: offset(k), framesAfter: after, commitsAfter: commits) }
    }

    /// The WAL-index header (sqlite.org/walformat.html#the_wal_index_file_format): two
    /// identical 48-byte copies in native byte order of version, unused, change counter,
    /// isInit, big-endian-checksum flag, page size, mxFrame (the last committed frame, from
    /// 1), database size, last frame's checksum, the log header's salts (as stored there)
    /// and a checksum over the first 40 bytes. Nil unless both copies agree and hold.
    static func indexHeader(_ path: String) -> (frames: Int, salts: [UInt8])? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        guard let data = try? handle.read(upToCount: 96), data.count == 96 else { return nil }
        let b = [UInt8](data)
        guard b[0..<48] == b[48..<96], b[12] == 1 else { return nil }
        func u32(_ at: Int) -> UInt32 {
            b.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at, as: UInt32.self) }
        }
        guard u32(0) == 3_007_000 else { return nil }
        var (s0, s1): (UInt32, UInt32) = (0, 0)
        for i in stride(from: 0, to: 40, by: 8) {
            s0 = s0 &+ u32(i) &+ s1
            s1 = s1 &+ u32(i + 4) &+ s0
        }
        guard (s0, s1) == (u32(40), u32(44)) else { return nil }
        return (Int(u32(16)), Array(b[32..<40]))
    }
}
