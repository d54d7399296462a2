import ArgumentParser
import Foundation
import MnemoClient
import MnemoProtocol

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Export memory as JSONL (admin.export): a header line, then one record per line.",
        discussion: """
            The lines stream over the socket and this command writes them, with your own rights: to FILE \
            (replaced atomically when complete) or, without FILE, to stdout. With --server NAME, mnemod writes \
            the file NAME in its transfer directory instead (never replacing one). Tiers: wm, ep, sem \
            (default: all). You need 'a' on the namespace prefix you export. \
            Examples: mnemo export wf42.jsonl --ns wf/42 ; mnemo export --tiers ep,sem > all.jsonl ; \
            mnemo export --ns wf --server wf-2026-12-07.jsonl
            """)
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Write the export to this file (on this side of the socket); default: stdout.") var file: String?
    @Option(name: .long, help: "Namespace prefix to export (whole segments; default: everything).") var ns: String?
    @Option(name: .long, help: "Comma-separated tiers (wm, ep, sem).") var tiers: String?
    @Option(name: .long, help: "Have mnemod write this file name in its transfer directory instead.") var server: String?

    func run() throws {
        try reporting {
            if file != nil && server != nil { throw Failure("mnemo: give FILE or --server, not both", code: 64) }
            var params: [JSONMember] = []
            if let ns { params.append(.init("ns", .string(ns))) }
            if let tiers {
                params.append(.init("tiers", .array(tiers.split(separator: ",").map { .string($0.trimmingCharacters(in: .whitespaces)) })))
            }
            if let server { params.append(.init("path", .string(server))) }
            let client = try global.connect()
            let started = Date()
            printErr("mnemo: exporting \(ns ?? "every namespace")\(server.map { " to the transfer directory as " + $0 } ?? file.map { " to " + $0 } ?? "")...")
            let r = try global.call(client, "admin.export", .object(params))
            let seconds = String(format: "%.2f", Date().timeIntervalSince(started))
            if server != nil {
                switch global.output {
                case .json: print(r.text)
                case .table:
                    print("exported \(r["lines"]?.text ?? "?") lines (\(r["bytes"]?.text ?? "?") bytes) at rev \(r["rev"]?.text ?? "?") to \(r["path"]?.stringValue ?? "?") in the transfer directory, counts \(r["counts"]?.text ?? "{}") in \(seconds) s")
                }
                return
            }
            // The lines arrived as notifications before the response, in order.
            let sink = try LocalFile(file)
            var buffer: [UInt8] = []
            while let note = try? client.nextNotification(timeoutMs: 0) {
                guard let line = note["params"]?["line"] else { continue }
                buffer += line.bytes
                buffer.append(0x0A)
                if buffer.count >= 1 << 20 {
                    try sink.write(buffer)
                    buffer.removeAll(keepingCapacity: true)
                }
            }
            try sink.write(buffer)
            try sink.commit()
            printErr("mnemo: exported \(r["lines"]?.text ?? "?") lines at rev \(r["rev"]?.text ?? "?")\(file.map { " to " + $0 } ?? ""), counts \(r["counts"]?.text ?? "{}") (\(seconds) s)")
        }
    }
}

/// Where `mnemo export` writes: stdout, or a file replaced atomically when complete
/// (a temporary file beside it, renamed over it).
final class LocalFile {
    private let handle: FileHandle
    private let path: String?
    private let tmp: String?

    init(_ path: String?) throws {
        self.path = path
        guard let path else {
            handle = .standardOutput
            tmp = nil
            return
        }
        let tmp = path + ".tmp-\(getpid())"
        guard FileManager.default.createFile(atPath: tmp, contents: nil, attributes: [.posixPermissions: 0o600]),
              let h = FileHandle(forWritingAtPath: tmp)
        else { throw Failure("mnemo: cannot create \(tmp)", code: 73) }
        handle = h
        self.tmp = tmp
    }

    func write(_ bytes: [UInt8]) throws {
        do {
            try handle.write(contentsOf: Data(bytes))
        } catch {
            if let tmp { try? FileManager.default.removeItem(atPath: tmp) }
            throw Failure("mnemo: cannot write \(path ?? "stdout"): \(error.localizedDescription)", code: 74)
        }
    }

    func commit() throws {
        guard let path, let tmp else { return }
        do {
            try handle.synchronize()
            try handle.close()
        } catch {
            try? FileManager.default.removeItem(atPath: tmp)
            throw Failure("mnemo: cannot write \(path): \(error.localizedDescription)", code: 74)
        }
        guard rename(tmp, path) == 0 else {
            try? FileManager.default.removeItem(atPath: tmp)
            throw Failure("mnemo: cannot rename \(tmp) to \(path): \(String(cString: strerror(errno)))", code: 73)
        }
    }
}

struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Import an export (admin.import); idempotent by id.",
        discussion: """
            This command reads FILE (- for stdin) with your own rights and streams its lines over the socket; \
            with --server NAME, mnemod reads the file NAME from its transfer directory instead. The whole export \
            is checked before anything is applied: a bad line is reported with its number, a record outside \
            your grants ('a' on its namespace, after --remap) refuses the import, and nothing is imported. \
            Records whose id exists are skipped, so importing twice is harmless. \
            Example: mnemo import wf42.jsonl --remap wf/42=wf/43 --dry-run. \
            With --from mcp-memory, FILE is the official MCP memory server's memory.json (JSONL of entities and \
            relations), imported into the knowledge graph that `mnemo mcp --memory-server-compat` serves \
            (namespace --ns, default mcp/memory): entities are created or get the observations they lack, \
            relations are created; importing twice changes nothing.
            """)
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The export file (- for stdin).") var file: String?
    @Option(name: .long, help: "Have mnemod read this file name from its transfer directory instead.") var server: String?
    @Flag(name: .long, help: "Only check the export and report what would be imported.") var dryRun = false
    @Option(name: .long, help: "Move namespace FROM (and below) to TO: FROM=TO; repeatable, first match wins.") var remap: [String] = []
    @Option(name: .long, help: "The file's format: mnemo (an export, the default) or mcp-memory (the MCP memory server's file).")
    var from = "mnemo"
    @Option(name: .long, help: "With --from mcp-memory: the graph's namespace (default mcp/memory).") var ns: String?

    /// Bytes of lines per call of a streamed import (well inside the default max_line_bytes).
    static let chunkBytes = 256 << 10

    func run() throws {
        try reporting {
            switch from {
            case "mnemo": break
            case "mcp-memory": return try importMemoryServerFile()
            default: throw Failure("mnemo: --from is mnemo or mcp-memory, not \(from)", code: 64)
            }
            guard ns == nil else { throw Failure("mnemo: --ns goes with --from mcp-memory", code: 64) }
            guard (file == nil) != (server == nil) else { throw Failure("mnemo: give FILE or --server NAME (one of them)", code: 64) }
            var rules: [JSON] = []
            for r in remap {
                let parts = r.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                    throw Failure("mnemo: --remap wants FROM=TO, got \(r)", code: 64)
                }
                rules.append(.object([.init("from", .string(parts[0])), .init("to", .string(parts[1]))]))
            }
            var last: [JSONMember] = []
            if dryRun { last.append(.init("dry_run", .bool(true))) }
            if !rules.isEmpty { last.append(.init("remap", .array(rules))) }
            let client = try global.connect()
            let started = Date()
            let r: JSON
            if let server {
                printErr("mnemo: \(dryRun ? "checking" : "importing") \(server) from the transfer directory...")
                r = try global.call(client, "admin.import", .object([.init("path", .string(server))] + last))
            } else {
                let name = file ?? "-"
                printErr("mnemo: \(dryRun ? "checking" : "importing") \(name == "-" ? "stdin" : name)...")
                r = try streamImport(client, name: name, last: last)
            }
            let seconds = String(format: "%.2f", Date().timeIntervalSince(started))
            switch global.output {
            case .json: print(r.text)
            case .table:
                let verb = dryRun ? "would import" : "imported"
                print("\(verb) \(r["imported"]?.text ?? "0") records \(r["counts"]?.text ?? "{}"), skipped \(r["skipped"]?.text ?? "0") (\(seconds) s)")
                if let f = r["forbidden"] {
                    print("outside your grants: \(f["count"]?.text ?? "?") records, first \(f["records"]?.text ?? "[]")")
                }
            }
        }
    }

    /// `--from mcp-memory`: the memory server's JSONL file into the shared knowledge graph.
    private func importMemoryServerFile() throws {
        guard let file, server == nil, remap.isEmpty, !dryRun else {
            throw Failure("mnemo: --from mcp-memory takes FILE only (no --server, --remap or --dry-run)", code: 64)
        }
        let data = file == "-" ? FileHandle.standardInput.readDataToEndOfFile() : FileManager.default.contents(atPath: file)
        guard let data else { throw Failure("mnemo: cannot read \(file)", code: 66) }
        let client = try global.connect()
        let graph = MemoryGraph(ns: ns ?? "mcp/memory") { method, params in try client.call(method, params) }
        let counts: (entities: Int, updated: Int, relations: Int)
        do {
            counts = try graph.importFile(String(decoding: data, as: UTF8.self))
        } catch let f as MemoryGraph.Failure {
            throw Failure("mnemo: \(file): \(f.description)", code: 65)
        }
        switch global.output {
        case .json:
            print(JSON.object([JSONMember("entities", .int(Int64(counts.entities))), JSONMember("updated", .int(Int64(counts.updated))),
                               JSONMember("relations", .int(Int64(counts.relations)))]).text)
        case .table:
            print("imported \(counts.entities) entities (\(counts.updated) existing ones gained observations) and \(counts.relations) relations into \(ns ?? "mcp/memory")")
        }
    }

    /// Sends the export's lines in calls of about ``chunkBytes`` (`more: true`), then the last.
    private func streamImport(_ client: MnemoClient, name: String, last: [JSONMember]) throws -> JSON {
        let data: Data
        if name == "-" {
            data = FileHandle.standardInput.readDataToEndOfFile()
        } else {
            guard let d = FileManager.default.contents(atPath: name) else { throw Failure("mnemo: cannot read \(name)", code: 66) }
            data = d
        }
        let bytes = [UInt8](data)
        var chunk: [JSON] = []
        var chunkSize = 0
        var lineNo = 0
        var start = 0
        while start < bytes.count {
            let end = bytes[start...].firstIndex(of: 0x0A) ?? bytes.count
            let line = bytes[start..<end]
            start = end + 1
            lineNo += 1
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x0D || $0 == 0x09 }) { continue }
            guard let json = try? JSONParser.parse(line, maxDepth: 512), json.objectValue != nil else {
                throw Failure("mnemo: \(name) line \(lineNo) is not a JSON object; nothing was imported", code: 65)
            }
            if chunkSize + line.count > Self.chunkBytes && !chunk.isEmpty {
                _ = try global.call(client, "admin.import", .object([.init("lines", .array(chunk)), .init("more", .bool(true))]))
                chunk.removeAll(keepingCapacity: true)
                chunkSize = 0
            }
            chunk.append(json)
            chunkSize += line.count
        }
        return try global.call(client, "admin.import", .object([.init("lines", .array(chunk))] + last))
    }
}

struct Snapshot: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a consistent online copy of the store to a directory (admin.snapshot).",
        discussion: """
            NAME is a new directory in mnemod's transfer directory (never replacing anything); it holds \
            manifest.json, episodic.sqlite, semantic.sqlite and working/. To restore: stop mnemod and start it \
            with --data-dir pointing at a copy of that directory. Needs 'a' on every namespace. \
            Example: mnemo snapshot 2026-11-22
            """)
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Snapshot name (a directory in the transfer directory).") var dir: String

    func run() throws {
        try reporting {
            let client = try global.connect()
            let started = Date()
            printErr("mnemo: snapshotting to \(dir)...")
            let r = try global.call(client, "admin.snapshot", .object([.init("path", .string(dir))]))
            let seconds = String(format: "%.2f", Date().timeIntervalSince(started))
            switch global.output {
            case .json: print(r.text)
            case .table:
                print("snapshot at rev \(r["rev"]?.text ?? "?") written to \(r["path"]?.stringValue ?? "?") (\(r["bytes"]?.text ?? "?") bytes) in \(seconds) s")
            }
        }
    }
}
