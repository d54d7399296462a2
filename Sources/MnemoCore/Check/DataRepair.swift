#if canImport(Glibc)
import Glibc
#endif
import Foundation
import MnemoProtocol

/// `mnemo repair`: makes a damaged data directory start again, losing only what the damage
/// hit, and says exactly what that was. Offline (it takes the directory's lock, so mnemod
/// must be stopped) and explicit.
///
/// First every file it will touch is copied into `DATA_DIR/repair-<time>/`. Then:
/// - **journal and snapshot files** with damage are rewritten with every valid record on
///   both sides of each damaged stretch, in order (a snapshot keeps its head and end), so a
///   flipped byte costs the record it hit, not everything after it; the revisions between
///   the last good record before a stretch and the first after it are reported lost;
/// - **databases** that fail `integrity_check` are salvaged into a new file (a row-by-row
///   copy through the page checksums that steps over what cannot be read; SQLite's
///   `.recover` when not even the schema reads), their full-text indexes rebuilt and
///   per-principal usage recounted; the rows per table before (as far as readable) and
///   after are reported.
public enum DataRepair {
    /// What one file's repair did.
    public struct Action: Sendable {
        public var file: String
        public var summary: String
        public var detail: [JSONMember]
    }

    /// What a repair did, and where the copies of the originals are.
    public struct Outcome: Sendable {
        public var backup: String?
        public var actions: [Action] = []

        public var json: JSON {
            .object([
                JSONMember("backup", backup.map(JSON.string) ?? .null),
                JSONMember("repaired", .array(actions.map { a in
                    .object([JSONMember("file", .string(a.file)), JSONMember("summary", .string(a.summary))] + a.detail)
                })),
            ])
        }
    }

    /// Repairs `dataDir`.
    /// - Throws: when mnemod holds the directory, or a file cannot be copied or written.
    public static func run(dataDir: String, now: Date = Date()) throws(StorageError) -> Outcome {
        let working = dataDir + "/working"
        let lock = try lockDirectory(working)
        defer { close(lock) }
        let report = DataCheck.run(dataDir: dataDir, full: true)
        var outcome = Outcome()
        guard report.severity > .sound else { return outcome }
        let stamp = ISO8601DateFormatter.string(from: now, timeZone: TimeZone(identifier: "UTC")!,
                                                formatOptions: [.withYear, .withMonth, .withDay, .withTime, .withTimeZone])
        let backup = dataDir + "/repair-" + stamp.replacingOccurrences(of: ":", with: "")
        do {
            try FileManager.default.createDirectory(atPath: backup, withIntermediateDirectories: false,
                                                    attributes: [.posixPermissions: 0o700])
        } catch {
            throw StorageError("cannot create \(backup): \(error.localizedDescription)")
        }
        outcome.backup = backup
        let judged = FileManager.default.fileExists(atPath: working) ? try JournalDirectory(working) : nil
        for entry in judged?.entries ?? [] where entry.verdict != .clean {
            try copy(entry.path, into: backup)
            outcome.actions.append(try repairJournalFile(entry))
        }
        for finding in report.findings where finding.file.hasSuffix(".sqlite-wal") && finding.severity > .sound {
            try copy(finding.file, into: backup)
            let index = String(finding.file.dropLast("-wal".count)) + "-shm"
            if FileManager.default.fileExists(atPath: index) { try copy(index, into: backup) }
            outcome.actions.append(try cutWAL(finding.file))
        }
        for finding in DataCheck.run(dataDir: dataDir, full: true).findings
        where finding.file.hasSuffix(".sqlite") && finding.severity == .damaged {
            for suffix in ["", "-wal", "-shm"] where FileManager.default.fileExists(atPath: finding.file + suffix) {
                try copy(finding.file + suffix, into: backup)
            }
            outcome.actions.append(try DatabaseSalvage.run(finding.file))
        }
        let reportPath = backup + "/repair-report.json"
        FileManager.default.createFile(atPath: reportPath, contents: Data((outcome.json.text + "\n").utf8),
                                       attributes: [.posixPermissions: 0o600])
        return outcome
    }

    /// Takes the journal directory's lock (the one mnemod holds while it runs).
    static func lockDirectory(_ working: String) throws(StorageError) -> Int32 {
        try? FileManager.default.createDirectory(atPath: working, withIntermediateDirectories: true)
        switch DataCheck.tryLock(working, create: true) {
        case .taken(let fd): return fd
        case .held: throw StorageError("mnemod is running on \(working) (its LOCK is held); stop it before repairing")
        case .unopened(let e): throw StorageError("cannot open \(working)/LOCK: \(String(cString: strerror(e)))")
        }
    }

    /// Keeps a copy of `path` in `dir` (once: a file already kept is not copied again).
    static func copy(_ path: String, into dir: String) throws(StorageError) {
        let target = dir + "/" + (path as NSString).lastPathComponent
        guard !FileManager.default.fileExists(atPath: target) else { return }
        do {
            try FileManager.default.copyItem(atPath: path, toPath: target)
        } catch {
            throw StorageError("cannot keep a copy of \(path) in \(dir): \(error.localizedDescription); nothing was repaired")
        }
    }

    /// Cuts a WAL before its damaged frame: what SQLite replays stays, the transactions
    /// committed after the damage are reported lost (later frames cannot be applied without
    /// the damaged one: each is a whole page whose neighbours may depend on it). A log that
    /// lost committed frames its WAL-index records keeps what remains: the index (kept in
    /// the backup) is removed, and SQLite rebuilds it from the log.
    static func cutWAL(_ path: String) throws(StorageError) -> Action {
        let index = String(path.dropLast("-wal".count)) + "-shm"
        let scan = WALScan(path: path, index: index)
        if scan.damage == nil, scan.missingFrames > 0 {
            guard unlink(index) == 0 else {
                throw StorageError("cannot remove \(index): \(String(cString: strerror(errno)))")
            }
            return Action(file: path, summary: "\(scan.missingFrames) committed frame(s) were lost from the log; what remains is kept and its WAL-index is rebuilt at the next open",
                          detail: [JSONMember("frames_lost", .int(Int64(scan.missingFrames)))])
        }
        guard let d = scan.damage else {
            return Action(file: path, summary: "nothing to cut", detail: [])
        }
        guard truncate(path, off_t(d.offset)) == 0 else {
            throw StorageError("cannot cut \(path) at byte \(d.offset): \(String(cString: strerror(errno)))")
        }
        // The index still records the frames cut off: SQLite rebuilds it from what remains.
        guard unlink(index) == 0 || errno == ENOENT else {
            throw StorageError("cannot remove \(index): \(String(cString: strerror(errno)))")
        }
        return Action(file: path, summary: "cut at byte \(d.offset) (frame \(d.frame)): \(d.commitsAfter) committed transaction(s) after the damage lost",
                      detail: [JSONMember("offset", .int(Int64(d.offset))), JSONMember("frames_dropped", .int(Int64(d.framesAfter + 1))),
                               JSONMember("transactions_lost", .int(Int64(d.commitsAfter)))])
    }

    /// Rewrites one journal or snapshot file with every valid record, reporting each
    /// damaged stretch and the revisions it took.
    static func repairJournalFile(_ e: JournalDirectory.Entry) throws(StorageError) -> Action {
        let revs = e.payloads.map { (try? ChangeCodec.decode($0))?.rev }
        var kept = e.payloads
        var lost: [JSON] = []
        for d in e.damage {
            let before = zip(e.frames, revs).filter { $0.0.offset < d.offset }.compactMap(\.1).max() ?? 0
            let after = zip(e.frames, revs).filter { $0.0.offset > d.offset }.compactMap(\.1).min()
            var member: [JSONMember] = [JSONMember("offset", .int(Int64(d.offset))), JSONMember("bytes", .int(Int64(d.bytes))),
                                        JSONMember("last_good_rev", .int(before))]
            if let after {
                member.append(JSONMember("next_rev", .int(after)))
                member.append(JSONMember("lost_revs", after > before + 1 ? .array([.int(before + 1), .int(after - 1)]) : .array([])))
            } else {
                member.append(JSONMember("lost_revs", .string("the end of the file: a write never acknowledged as durable")))
            }
            lost.append(.object(member))
        }
        if e.isSnapshot {
            // A snapshot must start with its head and end with its end record.
            if kept.first?["t"] != "snap" {
                kept.insert(.object([JSONMember("t", "snap"), JSONMember("rev", .int(revs.compactMap { $0 }.max() ?? 0))]), at: 0)
            }
            if kept.last?["t"] != "end" {
                kept.append(.object([JSONMember("t", "end"), JSONMember("count", .int(Int64(kept.count - 1)))]))
            }
        }
        var bytes: [UInt8] = []
        for json in kept {
            let payload = json.bytes
            var header = (UInt32(payload.count).littleEndian, CRC32C.checksum(payload).littleEndian)
            withUnsafeBytes(of: &header) { bytes.append(contentsOf: $0) }
            bytes.append(contentsOf: payload)
        }
        if !e.isSnapshot {
            // A log is a whole number of zero-filled chunks (recovery reads any other size
            // as a cut file).
            bytes += [UInt8](repeating: 0, count: (Journal.chunk - bytes.count % Journal.chunk) % Journal.chunk)
        }
        let tmp = e.path + ".repair"
        guard FileManager.default.createFile(atPath: tmp, contents: Data(bytes), attributes: [.posixPermissions: 0o600]),
              rename(tmp, e.path) == 0
        else {
            unlink(tmp)
            throw StorageError("cannot rewrite \(e.path): \(String(cString: strerror(errno)))")
        }
        let summary = "kept \(kept.count) valid records, dropped \(e.damage.count) damaged stretch(es): "
            + lost.map { l in
                let revs = l["lost_revs"]
                if let pair = revs?.arrayValue, pair.count == 2 {
                    return pair[0] == pair[1] ? "revision \(pair[0].text) lost" : "revisions \(pair[0].text)...\(pair[1].text) lost"
                }
                if revs?.arrayValue?.isEmpty == true { return "no revision lost" }
                return "a torn end (never acknowledged as durable)"
            }.joined(separator: "; ")
        return Action(file: e.path, summary: summary + (e.problem.map { "; " + $0 } ?? ""),
                      detail: [JSONMember("records_kept", .int(Int64(kept.count))), JSONMember("damage", .array(lost))])
    }
}
