#if canImport(Glibc)
import Glibc
#endif
import Foundation
import MnemoCore
import MnemoProtocol

extension Dispatcher {
    /// `admin.export`, `admin.import`, `admin.snapshot`: file and SQLite work, so they run
    /// on worker threads.
    static func transferMethods(engine: Engine) -> [(String, Method)] {
        [
            ("admin.export", Method(requiresSession: true, offLoop: true) { p, session, out throws(WireError) in
                try p.allowOnly(["ns", "tiers", "path"])
                let ns = try p.optionalString("ns")
                if let ns { try Validate.namespace(ns, field: "ns") }
                let tiers = try p.exportTiers()
                let path = try p.absolutePath("path", required: false)
                try session.require(.admin, ns ?? "", "admin.export")
                let summary: Exporter.Summary
                var bytes: Int?
                if let path {
                    let file = try ExportFile(path: path)
                    do throws(WireError) {
                        summary = try Exporter.run(engine, ns: ns, tiers: tiers) { line throws(WireError) in try file.write(line) }
                        bytes = try file.commit()
                    } catch {
                        file.discard()
                        throw error
                    }
                } else {
                    guard session.canStream else {
                        throw .invalidParams("path", "a streamed export must be sent alone (not in a batch); give path to write a file")
                    }
                    let max = engine.limits.maxPendingOutputBytes
                    var stream = JSONWriter(capacity: 4096)
                    var seq: Int64 = 0
                    let id = session.currentID
                    summary = try Exporter.run(engine, ns: ns, tiers: tiers) { line throws(WireError) in
                        stream.raw("{\"jsonrpc\":\"2.0\",\"method\":\"event\",\"params\":{\"request_id\":")
                        stream.value(id)
                        stream.raw(",\"seq\":")
                        stream.int(seq)
                        stream.raw(",\"line\":")
                        stream.raw(line)
                        stream.raw("}}\n")
                        seq += 1
                        guard stream.bytes.count <= max else {
                            throw .limit("max_pending_output_bytes", max: max,
                                         "the export is larger than a connection may have queued; give path to write it to a file")
                        }
                    }
                    session.streamPreface = stream.bytes
                }
                out.raw("{\"rev\":")
                out.int(summary.rev)
                out.raw(",\"counts\":")
                out.value(summary.counts.json)
                out.raw(",\"lines\":")
                out.int(summary.lines)
                if let path, let bytes {
                    out.raw(",\"path\":")
                    out.string(path)
                    out.raw(",\"bytes\":")
                    out.int(bytes)
                }
                out.byte(UInt8(ascii: "}"))
            }),
            ("admin.import", Method(requiresSession: true, offLoop: true) { p, session, out throws(WireError) in
                try p.allowOnly(["path", "dry_run", "remap"])
                guard let path = try p.absolutePath("path", required: true) else { throw .invalidParams("path", "required") }
                let dryRun = try p.optionalBool("dry_run") ?? false
                let remap = try p.remaps()
                // Access: admin on every namespace (MethodAccess): the file may write anywhere.
                let r = try Importer.run(engine, path: path, dryRun: dryRun, remap: remap)
                out.raw("{\"imported\":")
                out.int(r.imported)
                out.raw(",\"skipped\":")
                out.int(r.skipped)
                out.raw(",\"counts\":")
                out.value(r.counts.json)
                if let rev = r.rev {
                    out.raw(",\"rev\":")
                    out.int(rev)
                }
                if dryRun { out.raw(",\"dry_run\":true") }
                out.byte(UInt8(ascii: "}"))
            }),
            ("admin.snapshot", Method(requiresSession: true, offLoop: true) { p, session, out throws(WireError) in
                try p.allowOnly(["path"])
                guard let path = try p.absolutePath("path", required: true) else { throw .invalidParams("path", "required") }
                // Access: admin on every namespace (MethodAccess): a snapshot copies the whole store.
                let r = try Snapshotter.run(engine, path: path, serverVersion: ServerInfo.version)
                out.raw("{\"path\":")
                out.string(r.path)
                out.raw(",\"bytes\":")
                out.int(r.bytes)
                out.raw(",\"rev\":")
                out.int(r.rev)
                out.raw(",\"at\":")
                Timestamp.write(r.at, to: &out)
                out.byte(UInt8(ascii: "}"))
            }),
        ]
    }
}

extension Params {
    /// An absolute file path (`common#/$defs/path`).
    func absolutePath(_ key: String, required: Bool) throws(WireError) -> String? {
        let given: String? = try required ? string(key) : optionalString(key)
        guard let path = given else { return nil }
        guard path.hasPrefix("/"), path.utf8.count >= 2, path.utf8.count <= 4096 else {
            throw .invalidParams(name(key), "must be an absolute path (2 to 4096 bytes, starting with /)")
        }
        guard !path.utf8.contains(0) else { throw .invalidParams(name(key), "must not contain NUL") }
        return path
    }

    /// `tiers` of admin.export: distinct known tiers this server exports (default: all of those).
    func exportTiers() throws(WireError) -> [ExportTier] {
        guard let list = try optionalArray("tiers") else { return ExportTier.supported }
        guard !list.isEmpty else { throw .invalidParams(name("tiers"), "must name at least one tier") }
        var tiers: [ExportTier] = []
        for item in list {
            guard let s = item.stringValue, let t = ExportTier(rawValue: s) else {
                throw .invalidParams(name("tiers"), "unknown tier \(item.text); tiers are \(ExportTier.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            guard ExportTier.supported.contains(t) else {
                throw .invalidParams(name("tiers"), "tier \(s) is not exported by this mnemod (it exports \(ExportTier.supported.map(\.rawValue).joined(separator: ", ")))")
            }
            guard !tiers.contains(t) else { throw .invalidParams(name("tiers"), "must not repeat \(s)") }
            tiers.append(t)
        }
        return tiers
    }

    /// `remap` of admin.import: `[{from, to}]`, namespaces, at most 16.
    func remaps() throws(WireError) -> [NamespaceRemap] {
        guard let list = try optionalArray("remap") else { return [] }
        guard list.count <= Limits.maxImportRemaps else {
            throw .invalidParams(name("remap"), "at most \(Limits.maxImportRemaps) rules")
        }
        var rules: [NamespaceRemap] = []
        for (i, item) in list.enumerated() {
            let field = name("remap") + "[\(i)]"
            guard let members = item.objectValue, members.count == 2,
                  let from = item["from"]?.stringValue, let to = item["to"]?.stringValue
            else { throw .invalidParams(field, "must be {\"from\": namespace, \"to\": namespace}") }
            try Validate.namespace(from, field: field + ".from")
            try Validate.namespace(to, field: field + ".to")
            rules.append(NamespaceRemap(from: from, to: to))
        }
        return rules
    }
}

/// An export being written: a temporary file beside the target, renamed over it once
/// complete (so a reader never sees half an export, and a failure leaves the old file).
final class ExportFile {
    let path: String
    let tmp: String
    private let fd: Int32
    private var isOpen = true
    private var buffer: [UInt8] = []
    private var written = 0

    init(path: String) throws(WireError) {
        self.path = path
        let dir = (path as NSString).deletingLastPathComponent
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir.isEmpty ? "/" : dir, isDirectory: &isDir), isDir.boolValue else {
            throw .invalidParams("path", "the directory \(dir) does not exist")
        }
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue {
            throw .invalidParams("path", "\(path) is a directory")
        }
        tmp = path + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .app(.unavailable, "cannot create \(tmp): \(String(cString: strerror(errno)))") }
        buffer.reserveCapacity(1 << 20)
    }

    func write(_ line: [UInt8]) throws(WireError) {
        buffer.append(contentsOf: line)
        buffer.append(0x0A)
        if buffer.count >= 1 << 20 { try flush() }
    }

    private func flush() throws(WireError) {
        var off = 0
        while off < buffer.count {
            let n = buffer.withUnsafeBytes { raw in Glibc.write(fd, raw.baseAddress.map { $0 + off }, raw.count - off) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw .app(.unavailable, "cannot write \(tmp): \(String(cString: strerror(errno))); nothing was exported") }
            off += n
        }
        written += buffer.count
        buffer.removeAll(keepingCapacity: true)
    }

    /// Flushes, fsyncs and renames into place. Returns the file's size.
    func commit() throws(WireError) -> Int {
        try flush()
        guard fsync(fd) == 0 else { throw .app(.unavailable, "cannot fsync \(tmp): \(String(cString: strerror(errno)))") }
        close(fd)
        isOpen = false
        guard rename(tmp, path) == 0 else {
            let reason = String(cString: strerror(errno))
            throw .app(.unavailable, "cannot rename the export to \(path): \(reason)")
        }
        let dir = (path as NSString).deletingLastPathComponent
        let dfd = open(dir.isEmpty ? "/" : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 {
            _ = fsync(dfd)
            close(dfd)
        }
        return written
    }

    /// Removes the temporary file after a failure.
    func discard() {
        if isOpen { close(fd) }
        isOpen = false
        unlink(tmp)
    }
}
