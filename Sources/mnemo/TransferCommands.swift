import ArgumentParser
import Foundation
import MnemoClient
import MnemoProtocol

/// A path made absolute against the current directory (the daemon resolves nothing).
func absolute(_ path: String) -> String {
    if path.hasPrefix("/") { return path }
    return FileManager.default.currentDirectoryPath + "/" + path
}

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Export memory as JSONL (admin.export): a header line, then one record per line.",
        discussion: """
            With --file the daemon writes the file itself (atomically; the path must be writable by mnemod, \
            which runs on this host); without it the lines stream to stdout. Tiers: wm, ep, sem (default: all). \
            Examples: mnemo export --ns wf/42 --file /var/backups/wf42.jsonl ; mnemo export --tiers ep,sem > all.jsonl
            """)
    @OptionGroup var global: GlobalOptions
    @Option(name: .long, help: "Namespace prefix to export (whole segments; default: everything).") var ns: String?
    @Option(name: .long, help: "Comma-separated tiers (wm, ep, sem).") var tiers: String?
    @Option(name: [.short, .long], help: "Write the export to this file (done by mnemod) instead of stdout.") var file: String?

    func run() throws {
        try reporting {
            var params: [JSONMember] = []
            if let ns { params.append(.init("ns", .string(ns))) }
            if let tiers {
                params.append(.init("tiers", .array(tiers.split(separator: ",").map { .string($0.trimmingCharacters(in: .whitespaces)) })))
            }
            if let file { params.append(.init("path", .string(absolute(file)))) }
            let client = try global.connect()
            let started = Date()
            printErr("mnemo: exporting \(ns ?? "every namespace")\(file.map { " to " + absolute($0) } ?? "")...")
            let r = try global.call(client, "admin.export", .object(params))
            if file == nil {
                // The lines arrived as notifications before the response, in order.
                var buffer: [UInt8] = []
                while let note = try? client.nextNotification(timeoutMs: 0) {
                    guard let line = note["params"]?["line"] else { continue }
                    buffer += line.bytes
                    buffer.append(0x0A)
                    if buffer.count >= 1 << 20 {
                        FileHandle.standardOutput.write(Data(buffer))
                        buffer.removeAll(keepingCapacity: true)
                    }
                }
                FileHandle.standardOutput.write(Data(buffer))
            }
            let seconds = String(format: "%.2f", Date().timeIntervalSince(started))
            if file == nil {
                printErr("mnemo: exported \(r["lines"]?.text ?? "?") lines at rev \(r["rev"]?.text ?? "?"), counts \(r["counts"]?.text ?? "{}") (\(seconds) s)")
                return
            }
            switch global.output {
            case .json: print(r.text)
            case .table:
                print("exported \(r["lines"]?.text ?? "?") lines (\(r["bytes"]?.text ?? "?") bytes) at rev \(r["rev"]?.text ?? "?") to \(r["path"]?.stringValue ?? "?"), counts \(r["counts"]?.text ?? "{}") in \(seconds) s")
            }
        }
    }
}

struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Import a file written by mnemo export (admin.import); idempotent by id.",
        discussion: """
            The daemon reads the file (it must be readable by mnemod). The whole file is checked before \
            anything is applied; a bad line is reported with its number and nothing is imported. Records \
            whose id exists are skipped, so importing twice is harmless. \
            Example: mnemo import wf42.jsonl --remap wf/42=wf/43 --dry-run
            """)
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The export file.") var file: String
    @Flag(name: .long, help: "Only check the file and report what would be imported.") var dryRun = false
    @Option(name: .long, help: "Move namespace FROM (and below) to TO: FROM=TO; repeatable, first match wins.") var remap: [String] = []

    func run() throws {
        try reporting {
            var rules: [JSON] = []
            for r in remap {
                let parts = r.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                    throw Failure("mnemo: --remap wants FROM=TO, got \(r)", code: 64)
                }
                rules.append(.object([.init("from", .string(parts[0])), .init("to", .string(parts[1]))]))
            }
            var params: [JSONMember] = [.init("path", .string(absolute(file)))]
            if dryRun { params.append(.init("dry_run", .bool(true))) }
            if !rules.isEmpty { params.append(.init("remap", .array(rules))) }
            let client = try global.connect()
            let started = Date()
            printErr("mnemo: \(dryRun ? "checking" : "importing") \(absolute(file))...")
            let r = try global.call(client, "admin.import", .object(params))
            let seconds = String(format: "%.2f", Date().timeIntervalSince(started))
            switch global.output {
            case .json: print(r.text)
            case .table:
                let verb = dryRun ? "would import" : "imported"
                print("\(verb) \(r["imported"]?.text ?? "0") records \(r["counts"]?.text ?? "{}"), skipped \(r["skipped"]?.text ?? "0") (\(seconds) s)")
            }
        }
    }
}

struct Snapshot: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a consistent online copy of the store to a directory (admin.snapshot).",
        discussion: """
            The directory (created by mnemod; a previous snapshot there is replaced) holds manifest.json, \
            episodic.sqlite, semantic.sqlite and working/. To restore: stop mnemod and start it with \
            --data-dir DIR (or a copy of DIR). Example: mnemo snapshot /var/backups/mnemo/2026-11-22
            """)
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Snapshot directory.") var dir: String

    func run() throws {
        try reporting {
            let client = try global.connect()
            let started = Date()
            printErr("mnemo: snapshotting to \(absolute(dir))...")
            let r = try global.call(client, "admin.snapshot", .object([.init("path", .string(absolute(dir)))]))
            let seconds = String(format: "%.2f", Date().timeIntervalSince(started))
            switch global.output {
            case .json: print(r.text)
            case .table:
                print("snapshot at rev \(r["rev"]?.text ?? "?") written to \(r["path"]?.stringValue ?? "?") (\(r["bytes"]?.text ?? "?") bytes) in \(seconds) s")
            }
        }
    }
}
