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
/// frame is a torn write (never acknowledged as durable) and SQLite drops it as it should.
/// Frames with other salts are left over from before a checkpoint restarted the log.
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
    /// The file's size when it is not whole frames (nor whole frames and one frame's header,
    /// which is where a write cut by a crash leaves it: SQLite writes a frame's header, then
    /// its page): the file was cut, and what it held past the cut is gone.
    public var cutAt: Int?
    /// Where whole frames end (the size a repair cuts a cut file back to).
    public var wholeFramesEnd = 0

    /// What is wrong, for a refusal or a report; nil when nothing is.
    public func problem(_ wal: String) -> String? {
        if let d = damage { return Self.refusal(wal, d) }
        if let cutAt {
            return "\(wal) is \(cutAt) bytes, which is not whole frames: it was cut, and the transactions it held past byte \(wholeFramesEnd) are gone; the database is not opened and nothing on disk was changed. `mnemo repair --data-dir DIR` keeps a copy and cuts it back to whole frames"
        }
        return nil
    }

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

    /// Scans the WAL at `path`; an absent, empty or headerless file scans as empty.
    public init(path: String) {
        guard let data = FileManager.default.contents(atPath: path), data.count >= 32 else { return }
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
        let frameSize = 24 + pageSize
        let frames = (bytes.count - 32) / frameSize
        wholeFramesEnd = 32 + frames * frameSize
        let rest = (bytes.count - 32) % frameSize
        if rest != 0 && rest != 24 { cutAt = bytes.count }
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
}
