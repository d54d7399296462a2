#if canImport(Glibc)
import Glibc
#endif
import CMnemoSys
import Foundation
import MnemoProtocol
import Synchronization

/// The one directory where `admin.export`, `admin.import` and `admin.snapshot` touch files
/// on the daemon's host (`transfer_dir`, default `DATA_DIR/transfer`).
///
/// A caller names a file inside it, never a path: names are plain (`[A-Za-z0-9_-]` then
/// `[A-Za-z0-9._-]`, at most 200 bytes), so there is no `..`, no `/` and no hidden file.
/// Every operation is relative to a descriptor of the directory opened once at start
/// (`openat`), never follows a symbolic link (`O_NOFOLLOW`), reads only regular files and
/// never replaces anything: files are written under a temporary name and moved into place
/// with `renameat2(RENAME_NOREPLACE)`, so an existing name is `CONFLICT` and a reader never
/// sees half a file. Files and directories are created 0600 / 0700; the directory itself
/// must belong to the daemon's user and be closed to everyone else.
///
/// Absolute paths (the old form, which lets any caller allowed to export write wherever
/// the daemon may) are accepted only when `allow_absolute_transfer_paths` is on; they get
/// the same no-follow, no-overwrite handling for their last component.
public final class TransferDirectory: Sendable {
    /// The directory, as configured.
    public let path: String
    /// Whether absolute paths are accepted too (off by default; dangerous).
    public let allowsAbsolutePaths: Bool
    /// The directory's descriptor, once opened.
    private let descriptor = Mutex<Int32?>(nil)

    /// Longest name, leaving room for the temporary suffix within `NAME_MAX`.
    public static let maxNameBytes = 200

    /// The transfer directory at `path`, opened now (and created 0700, with its parents,
    /// when missing).
    /// - Throws: when it cannot be created or opened, is a symbolic link, is not owned by
    ///   the daemon's user, or is open to its group or others.
    public init(path: String, allowsAbsolutePaths: Bool = false) throws(ConfigError) {
        self.path = path
        self.allowsAbsolutePaths = allowsAbsolutePaths
        let fd = try Self.open(path)
        descriptor.withLock { $0 = fd }
    }

    /// The transfer directory at `path`, opened (with the same checks) at first use: for an
    /// engine that may never touch the disk, such as a volatile one in a test.
    public init(deferredPath path: String) {
        self.path = path
        allowsAbsolutePaths = false
    }

    deinit { if let fd = descriptor.withLock({ $0 }) { close(fd) } }

    private static func open(_ path: String) throws(ConfigError) -> Int32 {
        var st = stat()
        if lstat(path, &st) != 0 {
            do {
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true,
                                                        attributes: [.posixPermissions: 0o700])
            } catch {
                throw ConfigError("cannot create the transfer directory \(path): \(error.localizedDescription)")
            }
        }
        let fd = Glibc.open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else {
            throw ConfigError("cannot open the transfer directory \(path): \(errnoText()) (it must be a directory, not a symbolic link)")
        }
        guard fstat(fd, &st) == 0 else {
            close(fd)
            throw ConfigError("cannot stat the transfer directory \(path): \(errnoText())")
        }
        guard st.st_uid == geteuid() else {
            close(fd)
            throw ConfigError("the transfer directory \(path) belongs to uid \(st.st_uid), not to mnemod's uid \(geteuid())")
        }
        guard st.st_mode & 0o077 == 0 else {
            close(fd)
            throw ConfigError("the transfer directory \(path) is open to its group or others (mode \(String(st.st_mode & 0o777, radix: 8))); make it 0700")
        }
        return fd
    }

    /// The directory's descriptor, opening it on first use.
    /// - Throws: `UNAVAILABLE` when it cannot be opened.
    private func directory() throws(WireError) -> Int32 {
        try descriptor.withLock { fd throws(WireError) in
            if let fd { return fd }
            do throws(ConfigError) {
                let opened = try Self.open(path)
                fd = opened
                return opened
            } catch {
                throw .app(.unavailable, error.description)
            }
        }
    }

    /// Where the wire parameter `field` (given as `given`) points.
    /// - Throws: `FORBIDDEN` for an absolute path while those are off; -32602 for anything
    ///   that is not a plain name (or, when allowed, an absolute path to one).
    public func place(_ given: String, field: String) throws(WireError) -> TransferPlace {
        if given.hasPrefix("/") {
            guard allowsAbsolutePaths else {
                throw .app(.forbidden, "\(field): server-side absolute paths are off; give a file name inside the transfer directory, or stream the data through the socket (mnemo export / mnemo import)",
                           [JSONMember("field", .string(field))])
            }
            let parent = (given as NSString).deletingLastPathComponent
            let name = (given as NSString).lastPathComponent
            try Self.check(name: name, field: field)
            let dfd = Glibc.open(parent.isEmpty ? "/" : parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            guard dfd >= 0 else { throw .invalidParams(field, "cannot open the directory \(parent): \(Self.errnoText())") }
            return TransferPlace(directory: dfd, ownsDirectory: true, name: name, shown: given)
        }
        try Self.check(name: given, field: field)
        return TransferPlace(directory: try directory(), ownsDirectory: false, name: given, shown: given)
    }

    static func check(name: String, field: String) throws(WireError) {
        let bytes = Array(name.utf8)
        func plain(_ c: UInt8) -> Bool {
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x5F || c == 0x2D
        }
        guard !bytes.isEmpty, bytes.count <= maxNameBytes, plain(bytes[0]),
              bytes.allSatisfy({ plain($0) || $0 == 0x2E })
        else {
            throw .invalidParams(field, "must be a file name inside the transfer directory: 1 to \(maxNameBytes) bytes of A-Z a-z 0-9 . _ -, not starting with a dot (no /, no ..)")
        }
    }

    static func errnoText() -> String { String(cString: strerror(errno)) }
}

/// One name in a transfer directory (or, when allowed, the last component of an absolute
/// path, relative to its parent's descriptor).
public final class TransferPlace: @unchecked Sendable {
    /// Descriptor of the directory holding the name.
    let directory: Int32
    private let ownsDirectory: Bool
    /// The name inside `directory`.
    public let name: String
    /// What the caller gave, for replies and messages.
    public let shown: String

    init(directory: Int32, ownsDirectory: Bool, name: String, shown: String) {
        self.directory = directory
        self.ownsDirectory = ownsDirectory
        self.name = name
        self.shown = shown
    }

    deinit { if ownsDirectory { close(directory) } }

    /// - Throws: `CONFLICT` when something (of any kind, symbolic links included) has the name.
    public func requireFree() throws(WireError) {
        var st = stat()
        if fstatat(directory, name, &st, AT_SYMLINK_NOFOLLOW) == 0 { throw taken() }
    }

    func taken() -> WireError {
        .app(.conflict, "\(shown) exists; transfers never replace a file: choose another name or remove it first",
             [JSONMember("path", .string(shown))])
    }

    /// A name no one else uses, for a file being written.
    func temporaryName() -> String { ".\(name).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))" }

    /// The whole content of the regular file with this name, at most `max` bytes.
    /// - Throws: -32602 when it is missing, a symbolic link, not a regular file or too large.
    public func read(max: Int, field: String) throws(WireError) -> [UInt8] {
        // O_NONBLOCK: opening a FIFO planted under the name must not hang a worker.
        let fd = openat(directory, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            let e = errno
            if e == ELOOP { throw .invalidParams(field, "\(shown) is a symbolic link; transfers never follow one") }
            throw .invalidParams(field, "cannot open \(shown): \(String(cString: strerror(e)))")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG else {
            throw .invalidParams(field, "\(shown) is not a regular file")
        }
        guard Int(st.st_size) <= max else {
            throw .limit("max_import_bytes", max: max, "\(shown) holds \(st.st_size) bytes; at most \(max) are imported at once")
        }
        var bytes = [UInt8](repeating: 0, count: Int(st.st_size))
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + off, $0.count - off) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw .app(.unavailable, "cannot read \(shown): \(TransferDirectory.errnoText())") }
            if n == 0 { break }
            off += n
        }
        return Array(bytes[..<off])
    }

    /// Moves `temporary` (in the same directory) to this name, failing when the name is taken.
    func publish(_ temporary: String) throws(WireError) {
        guard Self.renameNoReplace(directory, temporary, name) == 0 else {
            let e = errno
            if e == EEXIST || e == ENOTEMPTY { throw taken() }
            throw .app(.unavailable, "cannot move \(shown) into place: \(String(cString: strerror(e)))")
        }
        _ = fsync(directory)
    }

    /// `renameat2(RENAME_NOREPLACE)`; where the filesystem lacks it, a hard link (files only)
    /// gives the same no-replace guarantee.
    static func renameNoReplace(_ dir: Int32, _ from: String, _ to: String) -> Int32 {
        let r = mnemo_rename_noreplace(dir, from, to)
        if r == 0 || (errno != EINVAL && errno != ENOSYS) { return r }
        guard linkat(dir, from, dir, to, 0) == 0 else { return -1 }
        _ = unlinkat(dir, from, 0)
        return 0
    }
}

/// A file being written into a transfer directory: a temporary name, moved into place
/// only when complete (never over an existing file). A failure leaves nothing behind.
public final class TransferWriter: @unchecked Sendable {
    private let place: TransferPlace
    private let temporary: String
    private let fd: Int32
    private var isOpen = true
    private var buffer: [UInt8] = []
    private var written = 0

    /// Starts writing `place`.
    /// - Throws: `CONFLICT` when the name is taken; `UNAVAILABLE` when the file cannot be made.
    public init(_ place: TransferPlace) throws(WireError) {
        try place.requireFree()
        self.place = place
        temporary = place.temporaryName()
        fd = openat(place.directory, temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .app(.unavailable, "cannot create a file for \(place.shown): \(TransferDirectory.errnoText())") }
        buffer.reserveCapacity(1 << 20)
    }

    /// Appends one line (a newline is added).
    public func write(_ line: [UInt8]) throws(WireError) {
        buffer.append(contentsOf: line)
        buffer.append(0x0A)
        if buffer.count >= 1 << 20 { try flush() }
    }

    private func flush() throws(WireError) {
        var off = 0
        while off < buffer.count {
            let n = buffer.withUnsafeBytes { raw in Glibc.write(fd, raw.baseAddress! + off, raw.count - off) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw .app(.unavailable, "cannot write \(place.shown): \(TransferDirectory.errnoText()); nothing was written") }
            off += n
        }
        written += buffer.count
        buffer.removeAll(keepingCapacity: true)
    }

    /// Flushes, fsyncs and moves the file into place. Returns its size.
    /// - Throws: `CONFLICT` when the name was taken meanwhile; `UNAVAILABLE` on I/O errors.
    public func commit() throws(WireError) -> Int {
        try flush()
        guard fsync(fd) == 0 else { throw .app(.unavailable, "cannot fsync \(place.shown): \(TransferDirectory.errnoText())") }
        close(fd)
        isOpen = false
        try place.publish(temporary)
        return written
    }

    /// Removes the temporary file (after a failure; harmless after a commit).
    public func discard() {
        if isOpen { close(fd) }
        isOpen = false
        _ = unlinkat(place.directory, temporary, 0)
    }
}

/// A directory being built in a transfer directory (a snapshot): created 0700 under a
/// temporary name, filled through ``path``, moved into place only when complete.
public final class TransferStaging: @unchecked Sendable {
    private let place: TransferPlace
    private let temporary: String
    private let fd: Int32

    /// Starts a directory for `place`.
    /// - Throws: `CONFLICT` when the name is taken; `UNAVAILABLE` when it cannot be made.
    public init(_ place: TransferPlace) throws(WireError) {
        try place.requireFree()
        self.place = place
        temporary = place.temporaryName()
        guard mkdirat(place.directory, temporary, 0o700) == 0 else {
            throw .app(.unavailable, "cannot create a directory for \(place.shown): \(TransferDirectory.errnoText())")
        }
        fd = openat(place.directory, temporary, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else {
            let reason = TransferDirectory.errnoText()
            _ = unlinkat(place.directory, temporary, AT_REMOVEDIR)
            throw .app(.unavailable, "cannot open the directory for \(place.shown): \(reason)")
        }
    }

    deinit { close(fd) }

    /// A path to the directory being built that stays on it whatever happens to the names
    /// around it (`/proc/self/fd/N`): for code that takes paths (SQLite's backup).
    public var path: String { "/proc/self/fd/\(fd)" }

    /// Moves the directory into place.
    /// - Throws: `CONFLICT` when the name was taken meanwhile; `UNAVAILABLE` otherwise.
    public func commit() throws(WireError) {
        _ = fsync(fd)
        try place.publish(temporary)
    }

    /// Removes the directory being built and everything in it (after a failure).
    public func discard() {
        try? FileManager.default.removeItem(atPath: "/proc/self/fd/\(place.directory)/\(temporary)")
    }
}
