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
                try export(engine, p, &session, &out)
            }),
            ("admin.import", Method(requiresSession: true, offLoop: true) { p, session, out throws(WireError) in
                try importRecords(engine, p, &session, &out)
            }),
            ("admin.snapshot", Method(requiresSession: true, offLoop: true) { p, session, out throws(WireError) in
                try snapshot(engine, p, &session, &out)
            }),
        ]
    }

    /// `admin.export`: JSONL to a new file in the transfer directory, or streamed to the
    /// caller as notifications ahead of the response.
    private static func export(_ engine: Engine, _ p: Params, _ session: inout Session, _ out: inout JSONWriter) throws(WireError) {
        try p.allowOnly(["ns", "tiers", "path"])
        let ns = try p.optionalString("ns")
        if let ns { try Validate.namespace(ns, field: "ns") }
        let tiers = try p.exportTiers()
        let place = try p.transferPlace(engine, "path")
        try session.require(.admin, ns ?? "", "admin.export")
        let summary: Exporter.Summary
        var bytes: Int?
        if let place {
            let file = try TransferWriter(place)
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
        if let place, let bytes {
            out.raw(",\"path\":")
            out.string(place.shown)
            out.raw(",\"bytes\":")
            out.int(bytes)
        }
        out.byte(UInt8(ascii: "}"))
    }

    /// `admin.import`: from a file in the transfer directory or from lines sent over the
    /// connection (staged with `more`), every record checked against the caller's grants.
    private static func importRecords(_ engine: Engine, _ p: Params, _ session: inout Session, _ out: inout JSONWriter) throws(WireError) {
        try p.allowOnly(["path", "lines", "more", "dry_run", "remap"])
        // Access: 'a' on every namespace a record lands in (after remapping), checked
        // per record; a caller with no 'a' anywhere may not even stage lines.
        guard session.authorization.unrestricted || session.authorization.grants.contains(where: { $0.perms.contains(.admin) }) else {
            throw Session.forbidden(.admin, "", "admin.import")
        }
        let place = try p.transferPlace(engine, "path")
        let lines = try p.optionalArray("lines")
        let more = try p.optionalBool("more") ?? false
        guard (place == nil) != (lines == nil) else {
            throw .invalidParams(place == nil ? "path" : "lines", "give exactly one of path (a file in the transfer directory) and lines (the export's lines)")
        }
        if more {
            guard let lines else { throw .invalidParams("more", "only with lines") }
            guard p["dry_run"] == nil, p["remap"] == nil else {
                throw .invalidParams(p["dry_run"] == nil ? "remap" : "dry_run", "goes with the last call of a streamed import (the one without more)")
            }
            let staged = try session.importStage.append(lines, field: p.name("lines"), max: engine.limits.maxImportBytes)
            out.raw("{\"staged\":")
            out.int(Int64(staged.lines))
            out.raw(",\"bytes\":")
            out.int(Int64(staged.bytes))
            out.byte(UInt8(ascii: "}"))
            return
        }
        let dryRun = try p.optionalBool("dry_run") ?? false
        let remap = try p.remaps()
        let source: Importer.Source
        if let place {
            source = .init(bytes: try place.read(max: engine.limits.maxImportBytes, field: p.name("path")),
                           name: place.shown, field: p.name("path"))
        } else {
            _ = try session.importStage.append(lines ?? [], field: p.name("lines"), max: engine.limits.maxImportBytes)
            source = .init(bytes: session.importStage.take(), name: "the streamed lines", field: p.name("lines"))
        }
        let grants = session.authorization
        let allowed: (@Sendable (String) -> Bool)? = grants.unrestricted ? nil : { @Sendable in grants.allows(.admin, $0) }
        // A global admin restores records as they were written; anyone else vouches for
        // what it imports: its own identity is stamped on every record.
        let r = try Importer.run(engine, source: source, dryRun: dryRun, remap: remap, allowed: allowed,
                                 stampedBy: grants.allows(.admin, "") ? nil : session.caller)
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
        if r.forbiddenCount > 0 {
            out.raw(",\"forbidden\":{\"count\":")
            out.int(Int64(r.forbiddenCount))
            out.raw(",\"records\":[")
            for (i, f) in r.forbidden.enumerated() {
                if i > 0 { out.byte(UInt8(ascii: ",")) }
                out.raw("{\"line\":")
                out.int(Int64(f.line))
                out.raw(",\"ns\":")
                out.string(f.ns)
                out.byte(UInt8(ascii: "}"))
            }
            out.raw("]}")
        }
        out.byte(UInt8(ascii: "}"))
    }

    /// `admin.snapshot`: a data directory copy, as a new directory in the transfer directory.
    private static func snapshot(_ engine: Engine, _ p: Params, _ session: inout Session, _ out: inout JSONWriter) throws(WireError) {
        try p.allowOnly(["path"])
        guard let place = try p.transferPlace(engine, "path") else { throw .invalidParams("path", "required") }
        // Access: admin on every namespace (MethodAccess): a snapshot copies the whole store.
        let r = try Snapshotter.run(engine, place: place, serverVersion: ServerInfo.version)
        out.raw("{\"path\":")
        out.string(r.path)
        out.raw(",\"bytes\":")
        out.int(r.bytes)
        out.raw(",\"rev\":")
        out.int(r.rev)
        out.raw(",\"at\":")
        Timestamp.write(r.at, to: &out)
        out.byte(UInt8(ascii: "}"))
    }
}

extension Params {
    /// `key` as a place in the transfer directory (`common#/$defs/path`); nil when absent.
    func transferPlace(_ engine: Engine, _ key: String) throws(WireError) -> TransferPlace? {
        guard let given = try optionalString(key) else { return nil }
        guard given.utf8.count <= 4096, !given.utf8.contains(0) else {
            throw .invalidParams(name(key), "must be a file name (or, where allowed, an absolute path) of at most 4096 bytes without NUL")
        }
        return try engine.transfer.place(given, field: name(key))
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
