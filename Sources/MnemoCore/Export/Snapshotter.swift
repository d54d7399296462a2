#if canImport(Glibc)
import Glibc
#endif
import Foundation
import GRDB
import MnemoProtocol

/// `admin.snapshot`: a consistent online copy of the whole store, laid out as a data
/// directory that `mnemod --data-dir` opens as is:
///
/// ```
/// <path>/manifest.json        format, version, rev, at, counts per tier, schema versions
/// <path>/episodic.sqlite      SQLite backup API copy (one read transaction)
/// <path>/semantic.sqlite      SQLite backup API copy (one read transaction)
/// <path>/working/snapshot-000000000001.mnemo   the working state, captured under its lock
/// ```
///
/// Each tier is consistent in itself; the three copies are taken one after the other,
/// working memory first, so the SQLite copies may hold writes a little newer than the
/// working capture (the manifest's `rev` is the highest revision in any of them).
/// The directory is built under a temporary name in the transfer directory and moved into
/// place when complete; it never replaces anything (an existing name is `CONFLICT`).
public enum Snapshotter {
    /// What a snapshot wrote.
    public struct Outcome: Sendable {
        /// The snapshot directory, as the caller named it.
        public var path: String
        /// Bytes of all its files.
        public var bytes: Int
        /// The highest revision it holds.
        public var rev: Int64
        /// When it was taken (ms since the epoch).
        public var at: Int64
        /// Records per tier.
        public var counts: TierCounts
    }

    /// The manifest's `format`.
    public static let format = "mnemo-snapshot"
    /// The manifest's `version` (of this layout).
    public static let version: Int64 = 1

    /// Writes a snapshot to the directory `place` names.
    /// - Throws: `CONFLICT` when the name is taken; `UNAVAILABLE` when a file cannot be
    ///   written (nothing is left behind).
    public static func run(_ engine: Engine, place: TransferPlace, serverVersion: String) throws(WireError) -> Outcome {
        let staging = try TransferStaging(place)
        let tmp = staging.path
        do throws(WireError) {
            guard mkdir(tmp + "/working", 0o700) == 0 else {
                throw WireError.app(.unavailable, "cannot create the snapshot's working directory: \(errnoText())")
            }
            let at = engine.time.nowMs()
            let state = engine.working.captureState()
            var counts = TierCounts()
            counts.add(.wm, state.keyCount)
            try writeWorking(state, to: Journal.snapshotPath(tmp + "/working", 1))
            let ep = try backup(engine.episodic.store, to: tmp + "/episodic.sqlite", table: "episodes")
            let sem = try backup(engine.semantic.db, to: tmp + "/semantic.sqlite", table: "facts")
            counts.add(.ep, ep.count)
            counts.add(.sem, sem.count)
            let rev = max(state.rev, ep.maxRev, sem.maxRev)
            let manifest = JSON.object([
                JSONMember("format", .string(format)), JSONMember("version", .int(version)),
                JSONMember("rev", .int(rev)), JSONMember("at", .string(Timestamp.format(at))),
                JSONMember("server_version", .string(serverVersion)),
                JSONMember("counts", counts.json),
                JSONMember("schema", .object([JSONMember("episodic", .array(ep.migrations.map(JSON.string))),
                                              JSONMember("semantic", .array(sem.migrations.map(JSON.string)))])),
                JSONMember("restore", .string("stop mnemod, then start it with --data-dir pointing at this directory (or a copy of it)")),
            ])
            try writeFile(tmp + "/manifest.json", manifest.bytes + [0x0A])
            syncDirectory(tmp + "/working")
            let bytes = directoryBytes(tmp + "/")  // the slash: /proc/self/fd/N is a link to follow
            try staging.commit()
            return Outcome(path: place.shown, bytes: bytes, rev: rev, at: at, counts: counts)
        } catch {
            staging.discard()
            throw error
        }
    }

    /// Copies a live database with the SQLite backup API into a new file.
    static func backup(_ store: SQLiteStore, to path: String, table: String) throws(WireError)
        -> (count: Int, maxRev: Int64, migrations: [String])
    {
        do {
            let copy = try DatabaseQueue(path: path)
            try store.writer.backup(to: copy)
            let facts = try copy.read { db in
                (try Int.fetchOne(db, sql: "SELECT count(*) FROM \(table)") ?? 0,
                 try Int64.fetchOne(db, sql: "SELECT value FROM mnemo_meta WHERE key = 'max_rev'") ?? 0,
                 try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations ORDER BY rowid"))
            }
            try copy.close()
            _ = chmod(path, 0o600)
            return (facts.0, facts.1, facts.2)
        } catch {
            throw .app(.unavailable, "cannot copy the \(store.name) database to \(path): \(error)")
        }
    }

    /// Writes the working state as a journal snapshot (the format ``Journal`` recovers).
    static func writeWorking(_ state: WorkingState, to path: String) throws(WireError) {
        var buffer: [UInt8] = []
        func put(_ payload: [UInt8]) {
            var header = (UInt32(payload.count).littleEndian, CRC32C.checksum(payload).littleEndian)
            withUnsafeBytes(of: &header) { buffer.append(contentsOf: $0) }
            buffer.append(contentsOf: payload)
        }
        let changes = state.asChanges()
        put(JSON.object([JSONMember("t", "snap"), JSONMember("rev", .int(state.rev))]).bytes)
        for c in changes { put(ChangeCodec.encode(c)) }
        put(JSON.object([JSONMember("t", "end"), JSONMember("count", .int(changes.count))]).bytes)
        try writeFile(path, buffer)
    }

    /// Writes and fsyncs a new file (mode 0600).
    static func writeFile(_ path: String, _ bytes: [UInt8]) throws(WireError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .app(.unavailable, "cannot create \(path): \(errnoText())") }
        defer { close(fd) }
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + off, $0.count - off) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw .app(.unavailable, "cannot write \(path): \(errnoText())") }
            off += n
        }
        guard fsync(fd) == 0 else { throw .app(.unavailable, "cannot fsync \(path): \(errnoText())") }
    }

    static func syncDirectory(_ dir: String) {
        let fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 {
            _ = fsync(fd)
            close(fd)
        }
    }

    static func directoryBytes(_ dir: String) -> Int {
        let fm = FileManager.default
        guard let files = fm.subpaths(atPath: dir) else { return 0 }
        return files.reduce(0) { sum, f in
            guard let attrs = try? fm.attributesOfItem(atPath: dir + "/" + f),
                  (attrs[.type] as? FileAttributeType) == .typeRegular else { return sum }
            return sum + ((attrs[.size] as? NSNumber)?.intValue ?? 0)
        }
    }

    static func errnoText() -> String { String(cString: strerror(errno)) }
}
