/// Every valid record of one journal or snapshot file, and every damaged stretch between
/// them: what recovery, `mnemo check` and `mnemo repair` read.
///
/// A file is a run of frames: `len` (UInt32 LE), `crc32c(payload)` (UInt32 LE), then
/// `len` bytes of JSON, in space reserved as zeros. Reading stops being simple when a
/// frame fails its checksum. The scan then looks for the next valid frame (one whose
/// payload looks like a JSON object and whose checksum holds), so
/// the records on both sides of a damaged stretch are known, and classifies the first
/// damage:
///
/// - **torn tail**: no valid record follows. The last write was cut by a crash; it was
///   never acknowledged as durable, and dropping it loses nothing promised.
/// - **lost writes**: valid records follow, but the damaged stretch holds a whole zero
///   sector (512 bytes, aligned). The journal is written into zero-filled space, so that is
///   a block that never reached the disk while later ones did: a power loss after writes
///   that no fsync had covered yet (an fsync makes every earlier byte durable, so nothing
///   after the hole was acknowledged in `strict`; in `normal` it is within the second the
///   mode may lose). Recovery stops at the hole.
/// - **corruption**: anything else (a flipped byte, a sector of garbage) with valid records
///   after it. Those records were acknowledged; recovery refuses rather than drop them.
public struct JournalScan: Sendable {
    /// One valid record: where its frame starts and its payload's byte range.
    public struct Frame: Sendable {
        public var offset: Int
        public var payload: Range<Int>
    }

    /// A stretch of bytes between valid records (or after the last) that is not a record
    /// and not the zero fill of reserved space.
    public struct Damage: Sendable, Equatable {
        /// Where it starts.
        public var offset: Int
        /// Its length (up to the next valid record, or to the last non-zero byte).
        public var bytes: Int
        /// Whether it holds an aligned zero sector: writes that never reached the disk.
        public var hasZeroSector: Bool
        /// Valid records after it in the file.
        public var recordsAfter: Int
    }

    /// How the first damage of a file reads.
    public enum Verdict: Sendable, Equatable {
        case clean
        case tornTail(Damage)
        case lostWrites(Damage)
        case corrupt(Damage)
    }

    /// The valid records, in file order.
    public var frames: [Frame] = []
    /// The damaged stretches, in file order.
    public var damage: [Damage] = []

    static let header = 8
    static let sector = 512

    /// Scans `raw` whole.
    public init(_ raw: UnsafeRawBufferPointer) {
        var off = 0
        while off < raw.count {
            if let frame = Self.frame(raw, at: off, searching: false) {
                frames.append(frame)
                off = frame.payload.upperBound
                continue
            }
            // Not a record: the zero fill of reserved space, or damage up to the next record.
            guard let lastNonZero = raw[off...].lastIndex(where: { $0 != 0 }) else { break }
            var next = off + 1
            while next <= lastNonZero, Self.frame(raw, at: next, searching: true) == nil { next += 1 }
            let end = next <= lastNonZero ? next : lastNonZero + 1
            damage.append(Damage(offset: off, bytes: end - off, hasZeroSector: Self.hasZeroSector(raw, off, end),
                                 recordsAfter: 0))
            off = end
        }
        for i in damage.indices {
            damage[i].recordsAfter = frames.count(where: { $0.offset > damage[i].offset })
        }
    }

    /// What the first damage means (see the type's description).
    public var verdict: Verdict {
        guard let first = damage.first else { return .clean }
        if first.recordsAfter == 0 { return .tornTail(first) }
        return first.hasZeroSector ? .lostWrites(first) : .corrupt(first)
    }

    /// The valid frame starting at `off`, if there is one. While `searching` for the next
    /// record after damage, a payload must also look like a JSON object by its first and
    /// last bytes before its checksum is computed, which keeps that search linear in
    /// practice; in sequence, any payload whose checksum holds is a record (one that is
    /// not JSON is then reported as damage by whoever decodes it).
    static func frame(_ raw: UnsafeRawBufferPointer, at off: Int, searching: Bool) -> Frame? {
        guard off + header < raw.count else { return nil }
        let len = Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: off, as: UInt32.self)))
        let start = off + header
        guard len >= 1, len <= raw.count - start else { return nil }
        if searching {
            guard len >= 2, raw[start] == UInt8(ascii: "{"), raw[start + len - 1] == UInt8(ascii: "}") else { return nil }
        }
        let crc = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: off + 4, as: UInt32.self))
        guard CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[start..<(start + len)])) == crc else { return nil }
        return Frame(offset: off, payload: start..<(start + len))
    }

    static func hasZeroSector(_ raw: UnsafeRawBufferPointer, _ from: Int, _ to: Int) -> Bool {
        var s = (from + sector - 1) / sector * sector
        while s + sector <= to {
            if !raw[s..<(s + sector)].contains(where: { $0 != 0 }) { return true }
            s += sector
        }
        return false
    }
}
