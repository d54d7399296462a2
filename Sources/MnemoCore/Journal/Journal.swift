import Dispatch
import Foundation
import Logging
import MnemoProtocol
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The write-ahead journal of working memory and coordination: an append-only log of
/// checksummed records plus periodic snapshots, in `<data_dir>/working/`.
///
/// A change is appended (to an in-memory buffer, into space already reserved on disk)
/// while the store lock is held, before it is applied, so the log order is the apply order
/// and a change that cannot be journaled is refused with `UNAVAILABLE` and not applied.
/// ``writeOut()`` hands buffered records to the kernel in one `pwrite`; the event loops
/// call it before sending replies, so in `normal` mode no reply is sent before the writes
/// it reflects reached the operating system. In `strict` mode a loop then fsyncs itself
/// when no fsync is in progress (``syncIfIdle(through:)``: one `fdatasync` covers every
/// request it read in the iteration), and otherwise holds those replies until the sync
/// thread's next `fdatasync` covers them (``requestSync(through:)``), reading on meanwhile:
/// group commit like Redis's `appendfsync always`, across the loops. In `normal` mode the
/// sync thread fsyncs once a second (the mode's bound on a power loss).
///
/// Disk space is reserved ahead in zero-filled chunks, so an append never meets a full
/// disk half way and an fsync of an overwritten block does not also flush file-size
/// metadata.
public final class Journal: Sendable {
    /// The durability mode.
    public let mode: Durability
    let dir: String
    private let logger: Logger
    private let io: Mutex<IO>
    /// Serializes fsync with rotation (which closes the file being synced).
    private let syncLock = Mutex<Void>(())
    private let synced = Atomic<UInt64>(0)
    private let wakeup = DispatchSemaphore(value: 0)
    private let stopping = Atomic<Bool>(false)
    private let stopped = DispatchSemaphore(value: 0)
    /// An fsync was asked for since the sync thread last started one.
    private let syncRequested = Atomic<Bool>(false)
    private let listeners = Mutex<[@Sendable () -> Void]>([])

    struct IO {
        var fd: Int32
        var gen: UInt64
        /// File offset up to which records were written.
        var fileEnd: Int = 0
        /// Bytes of the file reserved (zero-filled).
        var allocated: Int = 0
        /// Framed records not yet written.
        var buffer: [UInt8] = []
        /// Bytes ever appended / written (log sequence numbers).
        var appendedLSN: UInt64 = 0
        var writtenLSN: UInt64 = 0
        /// Set after an I/O error that makes the log unusable.
        var failure: String?
        var bytesSinceSnapshot = 0
    }

    static let chunk = 1 << 20
    static let frameHeader = 8

    /// What recovery found.
    public struct Recovery: Sendable {
        /// Records applied.
        public var records = 0
        /// Generation of the snapshot loaded (nil: none).
        public var snapshotGen: UInt64?
        /// The revision recorded by that snapshot: the state's revision at the cut, which
        /// may be above every revision still visible in it (deletions leave no trace).
        public var snapshotRev: Int64 = 0
        /// Logs replayed.
        public var logs = 0
        /// Bytes ignored after the last valid record of a log (a torn write).
        public var tornBytes = 0
        /// Records dropped after a hole of zeros (writes lost to a power loss).
        public var lostRecords = 0
    }

    /// Holds the data directory's `LOCK` (flock) while the journal is open.
    private let lockFD: Int32

    private init(dir: String, mode: Durability, logger: Logger, fd: Int32, gen: UInt64, lockFD: Int32) {
        self.dir = dir
        self.mode = mode
        self.logger = logger
        self.io = Mutex(IO(fd: fd, gen: gen))
        self.lockFD = lockFD
    }

    /// Opens (creating if needed) the journal in `dir`: replays the newest complete
    /// snapshot and the logs after it through `apply`, then starts a new log.
    /// - Throws: when the directory cannot be used or a record is damaged beyond a torn tail.
    static func open(dir: String, mode: Durability, logger: Logger,
                     apply: (Change) -> Void) throws(StorageError) -> (Journal, Recovery) {
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        } catch {
            throw StorageError("cannot create \(dir): \(error.localizedDescription)")
        }
        // One daemon per data directory: a second one would replay, snapshot and delete the
        // first one's live log. The lock is released by the kernel when the process ends.
        let lockPath = dir + "/LOCK"
        let lockFD = Glibc.open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard lockFD >= 0 else { throw StorageError("cannot open \(lockPath): \(String(cString: strerror(errno)))") }
        guard flock(lockFD, LOCK_EX | LOCK_NB) == 0 else {
            close(lockFD)
            throw StorageError("\(dir) is in use by another mnemod (\(lockPath) is locked); give each daemon its own --data-dir")
        }
        var recovery = Recovery()
        // The highest revision applied so far: where a refusal says the good data ends.
        var lastRev: Int64 = 0
        for entry in try JournalDirectory(dir).entries {
            for json in entry.replayable {
                let change = try decode(json, file: entry.path)
                lastRev = max(lastRev, change.rev)
                apply(change)
                recovery.records += 1
            }
            if entry.isSnapshot {
                recovery.snapshotGen = entry.generation
                recovery.snapshotRev = entry.snapshotRev
                lastRev = max(lastRev, entry.snapshotRev)
            } else {
                recovery.logs += 1
            }
            switch entry.verdict {
            case .clean:
                break
            case .corrupt(let d):
                throw corruption(entry.path, entry.isSnapshot && d.bytes == 0 ? nil : d, lastRev: lastRev,
                                 what: entry.problem ?? "damaged")
            case .tornTail(let d):
                recovery.tornBytes += d.bytes
                logger.warning("journal ends with a torn write: dropped", metadata: [
                    "file": "\(entry.path)", "offset": "\(d.offset)", "bytes": "\(d.bytes)", "last_rev": "\(lastRev)"])
            case .lostWrites(let d):
                recovery.tornBytes += d.bytes
                recovery.lostRecords += d.recordsAfter
                logger.warning("journal has a hole of zeros (writes no fsync covered, lost to a power loss): the records after it are dropped", metadata: [
                    "file": "\(entry.path)", "offset": "\(d.offset)", "bytes": "\(d.bytes)",
                    "records_dropped": "\(d.recordsAfter)", "last_rev": "\(lastRev)"])
            }
        }
        let gen = JournalDirectory.newestGeneration(dir) + 1
        let fd = try createLog(dir: dir, gen: gen)
        let journal = Journal(dir: dir, mode: mode, logger: logger, fd: fd, gen: gen, lockFD: lockFD)
        // On a full disk the daemon still starts and serves reads: `append` retries the
        // reservation and refuses writes with `UNAVAILABLE` until space returns.
        let reserved = journal.io.withLock { io in journal.reserve(&io, Journal.chunk) }
        if !reserved {
            logger.warning("disk full: cannot reserve journal space; writes are refused until space is freed",
                           metadata: ["dir": "\(dir)"])
        }
        return (journal, recovery)
    }

    private static func decode(_ json: JSON, file: String) throws(StorageError) -> Change {
        do {
            return try ChangeCodec.decode(json)
        } catch {
            throw StorageError("\(file): damaged record: \(error)")
        }
    }

    /// Starts the sync thread (fsync every second, and disk space reserved ahead).
    func start() {
        Threads.start("mnemo-journal") { [self] in syncLoop() }
    }

    // MARK: appending (store lock held)

    /// Buffers one record, reserving its disk space first.
    /// - Returns: the record's end LSN.
    /// - Throws: `UNAVAILABLE` if the disk is full or the log failed; nothing is buffered.
    func append(_ payload: [UInt8]) throws(WireError) -> UInt64 {
        try io.withLock { io throws(WireError) in
            if let failure = io.failure { throw .app(.unavailable, "journal unavailable: \(failure)") }
            let size = Journal.frameHeader + payload.count
            if io.fileEnd + io.buffer.count + size > io.allocated {
                guard reserve(&io, max(Journal.chunk, size)) else {
                    throw .app(.unavailable, "disk full: cannot reserve journal space in \(dir); nothing was applied")
                }
            }
            var header = (UInt32(payload.count).littleEndian, CRC32C.checksum(payload).littleEndian)
            withUnsafeBytes(of: &header) { io.buffer.append(contentsOf: $0) }
            io.buffer.append(contentsOf: payload)
            io.appendedLSN += UInt64(size)
            io.bytesSinceSnapshot += size
            return io.appendedLSN
        }
    }

    /// Writes buffered records to the file (one `pwrite`).
    /// - Returns: the LSN written through, or nil when the journal failed: then records
    ///   that were applied in memory are not on disk, and no reply may acknowledge them.
    public func writeOut() -> UInt64? {
        io.withLock { io in
            let written = flush(&io)
            return io.failure == nil ? written : nil
        }
    }

    private func flush(_ io: inout IO) -> UInt64 {
        guard !io.buffer.isEmpty, io.failure == nil else { return io.writtenLSN }
        var off = 0
        let count = io.buffer.count
        while off < count {
            let n = io.buffer.withUnsafeBytes { pwrite(io.fd, $0.baseAddress! + off, count - off, off_t(io.fileEnd + off)) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 {
                // Space was reserved, so this is an I/O error: stop taking writes.
                io.failure = "write to journal failed: \(String(cString: strerror(errno)))"
                logger.critical("journal write failed; refusing writes", metadata: ["error": "\(io.failure ?? "")"])
                return io.writtenLSN
            }
            off += n
        }
        io.fileEnd += count
        io.buffer.removeAll(keepingCapacity: io.buffer.capacity <= 1 << 20)
        io.writtenLSN = io.appendedLSN
        return io.writtenLSN
    }

    /// Reserves `bytes` more of zero-filled file space; false if the disk is full.
    private func reserve(_ io: inout IO, _ bytes: Int) -> Bool {
        let size = (bytes + Journal.chunk - 1) / Journal.chunk * Journal.chunk
        guard posix_fallocate(io.fd, off_t(io.allocated), off_t(size)) == 0 else { return false }
        let zeros = [UInt8](repeating: 0, count: size)
        var off = 0
        while off < size {
            let n = zeros.withUnsafeBytes { pwrite(io.fd, $0.baseAddress! + off, size - off, off_t(io.allocated + off)) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            off += n
        }
        io.allocated += size
        return true
    }

    // MARK: syncing

    /// LSN known to be on stable storage.
    public var syncedLSN: UInt64 { synced.load(ordering: .acquiring) }

    /// LSN appended so far.
    public var appendedLSN: UInt64 { io.withLock { $0.appendedLSN } }

    /// Makes everything appended through `lsn` durable: writes it out and fsyncs, unless
    /// another thread's fsync already covered it; blocks until then. (The event loops do
    /// not call this on their hot path: see ``requestSync(through:)``.)
    /// - Returns: false when the fsync failed (see ``writeOut()``).
    public func syncThrough(_ lsn: UInt64) -> Bool {
        guard synced.load(ordering: .acquiring) < lsn else { return true }
        syncNow()
        return synced.load(ordering: .acquiring) >= lsn
    }

    /// Strict mode's group commit when an fsync is already in progress: asks the sync
    /// thread for one covering `lsn` (already written out). The thread fsyncs back to back
    /// while asked, each fsync covering everything every loop wrote out meanwhile, and
    /// calls the listeners after each one; a loop holds the replies that wait for `lsn` and
    /// goes on reading other connections, instead of blocking behind the other fsync.
    public func requestSync(through lsn: UInt64) {
        guard synced.load(ordering: .acquiring) < lsn else { return }
        if !syncRequested.exchange(true, ordering: .acquiringAndReleasing) { wakeup.signal() }
    }

    /// Registers a callback the sync thread calls after every fsync (or failure).
    public func addSyncListener(_ listener: @escaping @Sendable () -> Void) {
        listeners.withLock { $0.append(listener) }
    }

    /// Whether the journal failed (an I/O error): nothing more can be made durable.
    public var failed: Bool { io.withLock { $0.failure != nil } }

    private func syncLoop() {
        while !stopping.load(ordering: .acquiring) {
            // Woken by requestSync (strict mode), else once a second (normal mode's bound).
            _ = wakeup.wait(timeout: .now() + .seconds(1))
            syncRequested.store(false, ordering: .releasing)
            syncNow()
            for listener in listeners.withLock({ $0 }) { listener() }
            // Keep half a chunk reserved ahead so appends rarely reserve inline.
            io.withLock { io in
                if io.failure == nil, io.allocated - io.fileEnd - io.buffer.count < Journal.chunk / 2 {
                    _ = reserve(&io, Journal.chunk)
                }
            }
        }
        syncNow()
        stopped.signal()
    }

    /// Writes out and fsyncs everything appended so far.
    public func syncNow() {
        syncLock.withLock { _ in syncLocked() }
    }

    /// Strict mode's fast path: fsyncs through `lsn` on the calling thread, unless an
    /// fsync is in progress (on the sync thread or another loop), which it does not wait for.
    /// - Returns: true when `lsn` is durable; false when the caller should hold its
    ///   replies and ``requestSync(through:)`` (or the journal failed: see ``failed``).
    public func syncIfIdle(through lsn: UInt64) -> Bool {
        if synced.load(ordering: .acquiring) >= lsn { return true }
        _ = syncLock.withLockIfAvailable { _ in syncLocked() }
        return synced.load(ordering: .acquiring) >= lsn
    }

    /// Writes out and fsyncs everything appended so far (`syncLock` held).
    private func syncLocked() {
        let (fd, lsn) = io.withLock { io in (io.fd, flush(&io)) }
        guard lsn > synced.load(ordering: .relaxed) else { return }
        if fdatasync(fd) != 0 {
            io.withLock { $0.failure = "fdatasync failed: \(String(cString: strerror(errno)))" }
            logger.critical("journal fsync failed; refusing writes")
            return
        }
        synced.store(lsn, ordering: .releasing)
    }

    /// Syncs and stops the sync thread.
    func stop() {
        stopping.store(true, ordering: .releasing)
        wakeup.signal()
        _ = stopped.wait(timeout: .now() + .seconds(10))
        io.withLock { io in
            close(io.fd)
            io.failure = io.failure ?? "journal closed"
        }
        close(lockFD)
    }

    // MARK: snapshots

    /// Bytes appended since the last snapshot.
    var bytesSinceSnapshot: Int { io.withLock { $0.bytesSinceSnapshot } }

    /// Switches to a new log file (store lock held, so the switch is a consistent cut).
    /// - Returns: the new generation; a snapshot of the state at this instant belongs to it.
    func rotate() throws(StorageError) -> UInt64 {
        try syncLock.withLock { _ throws(StorageError) in
            try io.withLock { io throws(StorageError) in
                _ = flush(&io)
                if let failure = io.failure { throw StorageError(failure) }
                let fd = try Journal.createLog(dir: dir, gen: io.gen + 1)
                var next = IO(fd: fd, gen: io.gen + 1)
                guard reserve(&next, Journal.chunk) else {
                    close(fd)
                    unlink(Journal.logPath(dir, io.gen + 1))
                    throw StorageError("disk full: cannot start a new journal file")
                }
                guard fdatasync(io.fd) == 0 else {
                    io.failure = "fdatasync failed: \(String(cString: strerror(errno)))"
                    close(fd)
                    unlink(Journal.logPath(dir, io.gen + 1))
                    throw StorageError(io.failure ?? "fdatasync failed")
                }
                close(io.fd)
                next.appendedLSN = io.appendedLSN
                next.writtenLSN = io.writtenLSN
                io = next
                synced.store(io.writtenLSN, ordering: .releasing)
                return io.gen
            }
        }
    }

    /// Writes `changes` as the snapshot of generation `gen`, then removes what it replaces.
    func writeSnapshot(gen: UInt64, rev: Int64, changes: [Change]) throws(StorageError) {
        let tmp = Journal.snapshotPath(dir, gen) + ".tmp"
        let fd = Glibc.open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw StorageError("cannot create \(tmp): \(String(cString: strerror(errno)))") }
        var buffer: [UInt8] = []
        var ok = true
        func put(_ payload: [UInt8]) {
            var header = (UInt32(payload.count).littleEndian, CRC32C.checksum(payload).littleEndian)
            withUnsafeBytes(of: &header) { buffer.append(contentsOf: $0) }
            buffer.append(contentsOf: payload)
            if buffer.count >= 1 << 20 { ok = ok && writeAll(fd, &buffer) }
        }
        put(JSON.object([JSONMember("t", "snap"), JSONMember("rev", .int(rev))]).bytes)
        for c in changes { put(ChangeCodec.encode(c)) }
        put(JSON.object([JSONMember("t", "end"), JSONMember("count", .int(changes.count))]).bytes)
        ok = ok && writeAll(fd, &buffer) && fsync(fd) == 0
        close(fd)
        guard ok, rename(tmp, Journal.snapshotPath(dir, gen)) == 0 else {
            unlink(tmp)
            throw StorageError("cannot write snapshot \(tmp): \(String(cString: strerror(errno)))")
        }
        Journal.syncDirectory(dir)
        io.withLock { $0.bytesSinceSnapshot = 0 }
        // The snapshot replaces every older snapshot and log.
        let files = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        for f in files {
            if let g = Journal.generation(f, prefix: "journal-", suffix: ".log"), g < gen { unlink(dir + "/" + f) }
            if let g = Journal.generation(f, prefix: "snapshot-", suffix: ".mnemo"), g < gen { unlink(dir + "/" + f) }
        }
    }

    private func writeAll(_ fd: Int32, _ buffer: inout [UInt8]) -> Bool {
        var off = 0
        while off < buffer.count {
            let n = buffer.withUnsafeBytes { write(fd, $0.baseAddress! + off, $0.count - off) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            off += n
        }
        buffer.removeAll(keepingCapacity: true)
        return true
    }

    // MARK: files

    static func logPath(_ dir: String, _ gen: UInt64) -> String { dir + "/journal-" + pad(gen) + ".log" }
    static func snapshotPath(_ dir: String, _ gen: UInt64) -> String { dir + "/snapshot-" + pad(gen) + ".mnemo" }

    private static func pad(_ gen: UInt64) -> String {
        let s = String(gen)
        return String(repeating: "0", count: max(0, 12 - s.count)) + s
    }

    static func generation(_ name: String, prefix: String, suffix: String) -> UInt64? {
        guard name.hasPrefix(prefix), name.hasSuffix(suffix) else { return nil }
        return UInt64(name.dropFirst(prefix.count).dropLast(suffix.count))
    }

    private static func createLog(dir: String, gen: UInt64) throws(StorageError) -> Int32 {
        let path = logPath(dir, gen)
        let fd = Glibc.open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw StorageError("cannot create \(path): \(String(cString: strerror(errno)))") }
        syncDirectory(dir)
        return fd
    }

    private static func syncDirectory(_ dir: String) {
        let fd = Glibc.open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 {
            _ = fsync(fd)
            close(fd)
        }
    }

    /// The refusal to start on damage that is not a torn tail: which file, where, the last
    /// good revision, how many valid records follow; nothing on disk was changed.
    static func corruption(_ path: String, _ damage: JournalScan.Damage?, lastRev: Int64, what: String) -> StorageError {
        let at = damage.map { "at byte \($0.offset) (\($0.bytes) bytes damaged, \($0.recordsAfter) valid records after it)" } ?? ""
        return StorageError("""
            \(path): \(what) \(at); the last good revision before it is \(lastRev). mnemod refuses to start and changed \
            nothing on disk. `mnemo check --data-dir DIR` reports every damaged record; `mnemo repair --data-dir DIR` keeps \
            a copy of the files, keeps every valid record on both sides and reports what was lost
            """, corrupt: true)
    }
}

/// One journal or snapshot file read whole: its scan and its valid records' JSON.
struct JournalFile {
    let scan: JournalScan
    let records: [JSON]
    /// The file's size in bytes.
    let size: Int

    /// - Throws: when the file cannot be read, or a record with a valid checksum is not JSON.
    init(path: String) throws(StorageError) {
        guard let data = FileManager.default.contents(atPath: path) else { throw StorageError("cannot read \(path)") }
        let bytes = [UInt8](data)
        let scan = bytes.withUnsafeBytes { JournalScan($0) }
        var records: [JSON] = []
        records.reserveCapacity(scan.frames.count)
        for f in scan.frames {
            do {
                records.append(try JSONParser.parse(bytes[f.payload], maxDepth: 512))
            } catch {
                throw StorageError("\(path): record at \(f.offset) has a valid checksum but is not JSON: \(error)", corrupt: true)
            }
        }
        self.scan = scan
        self.records = records
        size = bytes.count
    }
}

/// A storage failure at start-up or during a snapshot, with the file involved.
public struct StorageError: Error, CustomStringConvertible, Sendable {
    /// What failed.
    public let description: String
    /// Whether stored data is damaged (not a missing file or a failed call): the daemon
    /// refuses to start with its own exit code rather than lose acknowledged data.
    public let isCorruption: Bool
    /// Whether the cluster's PostgreSQL could not be joined (unreachable, or a schema
    /// newer than this build).
    public let isCluster: Bool
    init(_ d: String, corrupt: Bool = false, cluster: Bool = false) {
        description = d
        isCorruption = corrupt
        isCluster = cluster
    }
}
