import Foundation
import GRDB
import MnemoProtocol

/// `mnemo check`: every journal record and snapshot checksum of a data directory, judged by
/// the rules recovery applies (``JournalDirectory``), and each SQLite database's integrity
/// (`PRAGMA quick_check`, or `integrity_check` when full). Read only: it changes nothing.
public enum DataCheck {
    /// How bad a finding is; a report is as bad as its worst finding.
    public enum Severity: Int, Sendable, Comparable {
        /// Nothing wrong.
        case sound = 0
        /// A torn tail or writes a power loss took before any fsync: mnemod drops them by
        /// itself at start; nothing acknowledged as durable is lost.
        case recoverable = 4
        /// Corruption: mnemod refuses to start (journal) or serves the tier degraded
        /// (database) until `mnemo repair`.
        case damaged = 5

        public static func < (a: Severity, b: Severity) -> Bool { a.rawValue < b.rawValue }

        var name: String {
            switch self {
            case .sound: "sound"
            case .recoverable: "recoverable"
            case .damaged: "damaged"
            }
        }
    }

    /// What was found about one file.
    public struct Finding: Sendable {
        public var file: String
        public var severity: Severity
        /// One line for people.
        public var summary: String
        /// The same for programs.
        public var detail: [JSONMember]
    }

    /// Everything found.
    public struct Report: Sendable {
        public var findings: [Finding] = []
        /// The worst finding's severity (the exit code of `mnemo check`).
        public var severity: Severity { findings.map(\.severity).max() ?? .sound }

        /// `{"status", "files": [{file, status, summary, ...}]}`.
        public var json: JSON {
            .object([
                JSONMember("status", .string(severity.name)),
                JSONMember("files", .array(findings.map { f in
                    .object([JSONMember("file", .string(f.file)), JSONMember("status", .string(f.severity.name)),
                             JSONMember("summary", .string(f.summary))] + f.detail)
                })),
            ])
        }
    }

    /// The data directory's lock (`working/LOCK`, which mnemod holds while it runs), tried
    /// without waiting.
    enum DirectoryLock {
        /// Taken: the descriptor holds it until closed.
        case taken(Int32)
        /// mnemod holds it.
        case held
        /// The file cannot be opened (errno): absent when it is not created, where mnemod never ran.
        case unopened(Int32)
    }

    static func tryLock(_ working: String, create: Bool) -> DirectoryLock {
        let fd = open(working + "/LOCK", O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0o600)
        guard fd >= 0 else { return .unopened(errno) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            return .held
        }
        return .taken(fd)
    }

    /// Takes the lock of the data directory `dataDir` when mnemod does not hold it (a check
    /// then reads a still directory): the descriptor holds it until closed. `live` when
    /// mnemod runs on it.
    public static func lockIfStopped(_ dataDir: String) -> (live: Bool, fd: Int32?) {
        switch tryLock(dataDir + "/working", create: false) {
        case .taken(let fd): return (false, fd)
        case .held: return (true, nil)
        case .unopened: return (false, nil)  // never run here
        }
    }

    /// Checks the data directory `dataDir` (offline, or beside a running daemon: then
    /// `live` says the newest log is being written, so its end may be mid-write, and the
    /// WAL-indexes are in use, so they are not read).
    public static func run(dataDir: String, full: Bool, live: Bool = false) -> Report {
        var report = Report()
        report.findings += journal(dataDir + "/working", live: live)
        for name in ["episodic", "semantic", "audit"] {
            let path = dataDir + "/" + name + ".sqlite"
            guard FileManager.default.fileExists(atPath: path) else { continue }
            let index = live ? nil : path + "-shm"
            let wal = wal(path + "-wal", index: index)
            if let wal { report.findings.append(wal) }
            // Opening the database rebuilds its WAL-index from the log: when the index is the
            // evidence of a loss, it is put back, so that mnemod still sees it.
            let evidence = (wal?.severity ?? .sound) > .sound ? index.flatMap { FileManager.default.contents(atPath: $0) } : nil
            report.findings.append(database(path, full: full))
            if let evidence, let index { FileManager.default.createFile(atPath: index, contents: evidence) }
        }
        return report
    }

    /// The journal directory's files, judged as recovery judges them.
    public static func journal(_ dir: String, live: Bool) -> [Finding] {
        guard FileManager.default.fileExists(atPath: dir) else { return [] }
        let judged: JournalDirectory
        do {
            judged = try JournalDirectory(dir)
        } catch {
            return [Finding(file: dir, severity: .damaged, summary: error.description, detail: [])]
        }
        let newestLog = judged.entries.last { !$0.isSnapshot }?.path
        return judged.entries.map { e in
            let revs = e.payloads.map { (try? ChangeCodec.decode($0))?.rev }
            func revision(before offset: Int) -> Int64 {
                zip(e.frames, revs).filter { $0.0.offset < offset }.compactMap(\.1).max() ?? 0
            }
            func revision(after offset: Int) -> Int64? {
                zip(e.frames, revs).filter { $0.0.offset > offset }.compactMap(\.1).min()
            }
            var detail: [JSONMember] = [JSONMember("records", .int(Int64(e.records)))]
            let severity: Severity
            var summary = "\(e.records) records, every checksum holds"
            switch e.verdict {
            case .clean:
                severity = .sound
            case .tornTail(let d), .lostWrites(let d), .corrupt(let d):
                let kind: String
                switch e.verdict {
                case .tornTail:
                    kind = "torn_tail"
                    severity = live && e.path == newestLog ? .sound : .recoverable
                case .lostWrites:
                    kind = "lost_writes"
                    severity = .recoverable
                default:
                    kind = "corrupt"
                    severity = .damaged
                }
                let after = revision(after: d.offset)
                detail += [JSONMember("damage", .string(kind)), JSONMember("offset", .int(Int64(d.offset))),
                           JSONMember("bytes", .int(Int64(d.bytes))), JSONMember("records_after", .int(Int64(d.recordsAfter))),
                           JSONMember("last_good_rev", .int(revision(before: d.offset))),
                           JSONMember("next_rev", after.map { .int($0) } ?? .null),
                           JSONMember("damaged_stretches", .int(Int64(e.damage.count)))]
                summary = "\(kind.replacingOccurrences(of: "_", with: " ")) at byte \(d.offset) (\(d.bytes) bytes; last good revision \(revision(before: d.offset))"
                    + (after.map { ", next valid revision \($0)" } ?? "") + ", \(d.recordsAfter) valid records after it)"
                    + (e.problem.map { ": " + $0 } ?? "")
            }
            return Finding(file: e.path, severity: severity, summary: summary, detail: detail)
        }
    }

    /// A database's write-ahead log, when it holds frames: damaged when a frame fails
    /// before intact committed ones (SQLite would drop them silently), or when its
    /// WAL-index `index` records committed frames the log no longer holds.
    public static func wal(_ path: String, index: String?) -> Finding? {
        let scan = WALScan(path: path, index: index)
        if let loss = scan.loss(path), scan.damage == nil {
            return Finding(file: path, severity: .recoverable,
                           summary: loss + " (after a power loss in `normal` mode, which syncs the log about once a second, and for the audit log, always written so, this is that loss: mnemod starts and logs it; a `strict` store refuses to start on it: `mnemo repair`)",
                           detail: [JSONMember("damage", .string("lost_commits")), JSONMember("offset", .int(Int64(scan.wholeFramesEnd))),
                                    JSONMember("frames_lost", .int(Int64(scan.missingFrames)))])
        }
        if let problem = scan.problem(path) {
            return Finding(file: path, severity: .damaged, summary: problem,
                           detail: [JSONMember("damage", .string("corrupt")),
                                    JSONMember("offset", .int(Int64(scan.damage?.offset ?? 0))),
                                    JSONMember("records_after", .int(Int64(scan.damage?.framesAfter ?? 0)))])
        }
        guard scan.validFrames > 0 else { return nil }
        return Finding(file: path, severity: .sound, summary: "\(scan.validFrames) frames, \(scan.validCommits) committed transactions",
                       detail: [JSONMember("records", .int(Int64(scan.validFrames)))])
    }

    /// A live store's integrity, through its own connection (a damaged one is marked so:
    /// its tier degrades at once).
    public static func database(_ store: SQLiteStore, path: String, full: Bool) -> Finding {
        let pragma = full ? "integrity_check" : "quick_check"
        let problems = store.check(full: full)
        guard !problems.isEmpty else {
            return Finding(file: path, severity: .sound, summary: "\(pragma): ok", detail: [JSONMember("check", .string(pragma))])
        }
        return Finding(file: path, severity: .damaged,
                       summary: "\(pragma): \(problems.count) problem(s): \(problems.prefix(3).joined(separator: "; "))",
                       detail: [JSONMember("check", .string(pragma)), JSONMember("problems", .array(problems.prefix(100).map(JSON.string)))])
    }

    /// Checks a running engine: its journal files (the newest log is being written) and its
    /// databases through their own connections.
    public static func run(_ engine: Engine, full: Bool) -> Report {
        var report = Report()
        let dir = engine.dataDir
        if let dir { report.findings += journal(dir + "/working", live: true) }
        for (store, name) in [(engine.episodic.store, "episodic"), (engine.semantic.db, "semantic"), (engine.audit.db, "audit")] {
            report.findings.append(database(store, path: dir.map { $0 + "/" + name + ".sqlite" } ?? "(memory) " + name, full: full))
        }
        return report
    }

    /// One database's integrity, opened read-only.
    public static func database(_ path: String, full: Bool) -> Finding {
        let pragma = full ? "integrity_check" : "quick_check"
        _ = PageChecksums.installed  // pages are verified as they are read
        do {
            var config = Configuration()
            config.readonly = true
            let db = try DatabaseQueue(path: path, configuration: config)
            defer { try? db.close() }
            let found = try db.read { db in try String.fetchAll(db, sql: "PRAGMA \(pragma)(100)") }
            let problems = found.flatMap { $0.split(separator: "\n").map(String.init) }.filter { $0 != "ok" && !$0.hasPrefix("***") }
            if problems.isEmpty {
                return Finding(file: path, severity: .sound, summary: "\(pragma): ok", detail: [JSONMember("check", .string(pragma))])
            }
            return Finding(file: path, severity: .damaged,
                           summary: "\(pragma): \(problems.count) problem(s): \(problems.prefix(3).joined(separator: "; "))",
                           detail: [JSONMember("check", .string(pragma)),
                                    JSONMember("problems", .array(problems.prefix(100).map(JSON.string)))])
        } catch {
            return Finding(file: path, severity: .damaged, summary: "\(pragma) stopped: \(PageChecksums.describe(error))",
                           detail: [JSONMember("check", .string(pragma))])
        }
    }
}
