import Foundation
import MnemoProtocol

/// The files of a journal directory as recovery reads them, each judged by the rules that
/// make damage visible instead of silent (``JournalScan`` tells a torn tail, writes lost to
/// a power loss and corruption apart inside one file):
///
/// - only the newest snapshot counts, and it must be whole: it was fsynced before it got
///   its name, so any damage in it is corruption;
/// - the logs from the snapshot's generation on are replayed in order; only the last one
///   written may end torn (or with writes a power loss took), because every earlier one was
///   fsynced before the next began: a damaged end followed by a later log with records is
///   corruption;
/// - a log grows by whole chunks of reserved zeros, so one of any other size was cut
///   (corruption: the records it held past the cut are gone, and a torn write never
///   shortens a file).
///
/// Recovery (``Journal``), `mnemo check` and `mnemo repair` share these rules.
public struct JournalDirectory: Sendable {
    /// One file and what the rules make of it.
    public struct Entry: Sendable {
        /// Its path.
        public let path: String
        /// A snapshot (else a log).
        public let isSnapshot: Bool
        /// Its generation.
        public let generation: UInt64
        /// Its records and damage.
        let file: JournalFile
        /// The judgement under the rules above.
        public internal(set) var verdict: JournalScan.Verdict
        /// Why, when the verdict is corruption.
        public internal(set) var problem: String?

        /// Valid records in the file.
        public var records: Int { file.records.count }
        /// Records recovery replays: for a snapshot its changes (without its head and end
        /// records), for a log those before its first damage.
        var replayable: ArraySlice<JSON> {
            if isSnapshot { return file.records.dropFirst().dropLast() }
            guard let first = file.scan.damage.first else { return file.records[...] }
            return file.records.prefix(file.scan.frames.count { $0.offset < first.offset })
        }
        /// The revision the snapshot was cut at (its head record).
        var snapshotRev: Int64 { isSnapshot ? file.records.first?["rev"]?.int64Value ?? 0 : 0 }
        /// The damaged stretches of the file.
        public var damage: [JournalScan.Damage] { file.scan.damage }
        /// The file's valid frames.
        public var frames: [JournalScan.Frame] { file.scan.frames }
        /// The valid records' JSON, in order.
        public var payloads: [JSON] { file.records }
    }

    /// The snapshot (if any) first, then the logs to replay, in order.
    public let entries: [Entry]

    /// Reads and judges every file of `dir`.
    /// - Throws: when a file cannot be read, or a record whose checksum holds is not JSON.
    public init(_ dir: String) throws(StorageError) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        let logs = names.compactMap { Journal.generation($0, prefix: "journal-", suffix: ".log") }.sorted()
        let snapshots = names.compactMap { Journal.generation($0, prefix: "snapshot-", suffix: ".mnemo") }.sorted(by: >)
        var entries: [Entry] = []
        if let gen = snapshots.first {
            let path = Journal.snapshotPath(dir, gen)
            let file = try JournalFile(path: path)
            var e = Entry(path: path, isSnapshot: true, generation: gen, file: file, verdict: file.scan.verdict)
            let whole = file.records.first?["t"] == "snap" && file.records.last?["t"] == "end"
            if e.verdict != .clean || !whole {
                let d = file.scan.damage.first ?? JournalScan.Damage(offset: 0, bytes: 0, hasZeroSector: false, recordsAfter: 0)
                e.verdict = .corrupt(d)
                e.problem = "the snapshot is damaged (a snapshot is whole when it gets its name)"
            }
            entries.append(e)
        }
        for gen in logs where gen >= (snapshots.first ?? 0) {
            let path = Journal.logPath(dir, gen)
            let file = try JournalFile(path: path)
            if let last = entries.last, !last.isSnapshot, !file.records.isEmpty {
                switch last.verdict {
                case .tornTail(let d), .lostWrites(let d):
                    entries[entries.count - 1].verdict = .corrupt(d)
                    entries[entries.count - 1].problem = "the log ends damaged, yet a later log (\(path)) holds \(file.records.count) records"
                default:
                    break
                }
            }
            var e = Entry(path: path, isSnapshot: false, generation: gen, file: file, verdict: file.scan.verdict)
            if case .corrupt = e.verdict { e.problem = "a record fails its checksum" }
            // Logs grow by whole chunks of reserved zeros: any other size means the file was
            // cut, which a torn write never does (it leaves zeros), so records may be gone.
            if file.size % Journal.chunk != 0 {
                e.verdict = .corrupt(file.scan.damage.last ?? JournalScan.Damage(offset: file.size, bytes: 0, hasZeroSector: false, recordsAfter: 0))
                e.problem = "the log is \(file.size) bytes, not a whole number of the \(Journal.chunk)-byte chunks it grows by: it was cut short"
            }
            entries.append(e)
        }
        self.entries = entries
    }

    /// The highest generation of any file (the next log takes the one after).
    public static func newestGeneration(_ dir: String) -> UInt64 {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return names.compactMap {
            Journal.generation($0, prefix: "journal-", suffix: ".log") ?? Journal.generation($0, prefix: "snapshot-", suffix: ".mnemo")
        }.max() ?? 0
    }
}
