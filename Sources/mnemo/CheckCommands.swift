import ArgumentParser
import Foundation
import MnemoCore
import MnemoProtocol

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check stored data: every journal record and snapshot checksum, and each database's integrity.",
        discussion: """
            With --data-dir the files are read directly (mnemod may be stopped or running); without it the \\
            running daemon checks itself (admin.check, needs 'a' on every namespace; a damaged database is \\
            then degraded at once). Read only. Exit codes: 0 sound; 4 only a torn tail or writes a power loss \\
            took before any fsync (mnemod drops them itself; nothing acknowledged as durable), or SQLite \\
            commits missing from a log (a power loss in normal mode; damage to a strict store, which \\
            refuses to start on it until mnemo repair); 5 damaged \\
            (mnemod refuses to start or serves a tier degraded: see mnemo repair). \\
            Examples: mnemo check --data-dir /var/lib/mnemo ; mnemo check --full -o json
            """)
    @OptionGroup var global: GlobalOptions
    @Option(name: .long, help: "Check this data directory directly instead of asking the daemon.") var dataDir: String?
    @Flag(name: .long, help: "PRAGMA integrity_check instead of quick_check (slower; also checks indexes).") var full = false

    func run() throws {
        try reporting {
            let report: JSON
            if let dataDir {
                let lock = DataCheck.lockIfStopped(dataDir)
                defer { if let fd = lock.fd { close(fd) } }
                report = DataCheck.run(dataDir: dataDir, full: full, live: lock.live).json
            } else {
                let client = try global.connect()
                report = try global.call(client, "admin.check", .object([.init("full", .bool(full))]))
            }
            switch global.output {
            case .json: print(report.text)
            case .table:
                for f in report["files"]?.arrayValue ?? [] {
                    print("\(f["status"]?.stringValue ?? "?")\t\(f["file"]?.stringValue ?? "?")\t\(f["summary"]?.stringValue ?? "")")
                }
                print("status: \(report["status"]?.stringValue ?? "?")")
            }
            switch report["status"]?.stringValue {
            case "recoverable": throw ExitCode(4)
            case "damaged": throw ExitCode(5)
            default: break
            }
        }
    }
}

struct Repair: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Repair a damaged data directory, offline; keeps a copy of everything it touches.",
        discussion: """
            Stop mnemod first (repair takes the directory's lock). Every damaged file is first copied into \\
            DATA_DIR/repair-<time>/. Journal and snapshot files keep every valid record on both sides of each \\
            damaged stretch (a flipped byte costs the record it hit); databases that fail integrity_check are \\
            salvaged (sqlite3 .recover, else a row-by-row copy) with their full-text indexes rebuilt. Prints \\
            what was lost (revisions, rows per table) and writes it to repair-report.json beside the copies. \\
            Exit codes: 0 repaired or nothing to repair; 5 it could not repair. Example: mnemo repair --data-dir /var/lib/mnemo
            """)
    @OptionGroup var global: GlobalOptions
    @Option(name: .long, help: "The data directory to repair.") var dataDir: String

    func run() throws {
        try reporting {
            let outcome: DataRepair.Outcome
            do {
                outcome = try DataRepair.run(dataDir: dataDir)
            } catch {
                throw Failure("mnemo: \(error)", code: 5)
            }
            switch global.output {
            case .json: print(outcome.json.text)
            case .table:
                guard let backup = outcome.backup else {
                    print("nothing to repair: every file is sound")
                    return
                }
                for a in outcome.actions { print("\(a.file): \(a.summary)") }
                print("copies of the originals and repair-report.json: \(backup)")
            }
        }
    }
}
