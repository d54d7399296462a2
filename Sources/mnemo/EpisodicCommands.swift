import ArgumentParser
import Foundation
import MnemoClient
import MnemoProtocol

struct Summarize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Summarize a namespace's episodic records (ep.summarize), in chunks, with progress on stderr.",
        discussion: """
            Records that are not summaries and not yet summarized are condensed into summary records \
            (kind "summary", derived_from = their sources); the sources are kept, marked summarized. \
            Example: mnemo summarize wf/42/log --older-than-ms 86400000
            """)
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Namespace (exact).") var ns: String
    @Option(name: .long, help: "Only records older than this many milliseconds.") var olderThanMs: Int64?
    @Option(name: .long, help: "At most this many records in all (default: every qualifying record).") var maxRecords: Int?
    @Option(name: .long, help: "Records per call (1...100000); each call is one commit.") var chunk: Int = 1000

    func run() throws {
        try reporting {
            guard (1...100_000).contains(chunk) else { throw Failure("mnemo: --chunk must be 1...100000", code: 64) }
            let client = try global.connect()
            let started = Date()
            var total = 0
            var ids: [JSON] = []
            while maxRecords.map({ total < $0 }) ?? true {
                let n = min(chunk, (maxRecords ?? Int.max) - total)
                var params: [JSONMember] = [.init("ns", .string(ns)), .init("max_records", .int(n))]
                if let olderThanMs { params.append(.init("older_than_ms", .int(olderThanMs))) }
                let r = try global.call(client, "ep.summarize", .object(params))
                let done = Int(r["summarized"]?.int64Value ?? 0)
                ids += (r["summaries"]?.arrayValue ?? []).compactMap { $0["id"] }
                total += done
                if done == 0 { break }
                printErr("mnemo: summarized \(total) records into \(ids.count) summaries so far")
                if done < n { break }
            }
            let seconds = String(format: "%.2f", Date().timeIntervalSince(started))
            switch global.output {
            case .json:
                print(JSON.object([.init("summarized", .int(total)), .init("summaries", .array(ids))]).text)
            case .table:
                print("summarized \(total) records of \(ns) into \(ids.count) summaries in \(seconds) s")
            }
        }
    }
}

struct Prune: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Delete episodic records by policy (ep.prune); --dry-run reports what would go.",
        discussion: """
            Per namespace under the prefix: records older than --max-age-ms and/or beyond the newest \
            --max-count go. Pinned records never go; summaries stay unless --drop-summaries. Every \
            deletion is recorded in the deletion log. Example: mnemo prune wf --max-age-ms 604800000 --dry-run
            """)
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Namespace prefix (default: every namespace).") var ns: String?
    @Option(name: .long, help: "Delete records older than this many milliseconds.") var maxAgeMs: Int64?
    @Option(name: .long, help: "Keep at most this many newest records per namespace.") var maxCount: Int?
    @Flag(name: .long, help: "Summaries may be deleted too.") var dropSummaries = false
    @Flag(name: .long, help: "Only report what would be deleted.") var dryRun = false

    func run() throws {
        try reporting {
            guard maxAgeMs != nil || maxCount != nil else {
                throw Failure("mnemo: prune needs --max-age-ms and/or --max-count", code: 64)
            }
            var policy: [JSONMember] = []
            if let maxAgeMs { policy.append(.init("max_age_ms", .int(maxAgeMs))) }
            if let maxCount { policy.append(.init("max_count", .int(maxCount))) }
            if dropSummaries { policy.append(.init("keep_summaries", false)) }
            func params(dry: Bool) -> JSON {
                var p: [JSONMember] = [.init("policy", .object(policy)), .init("dry_run", .bool(dry))]
                if let ns { p.insert(.init("ns", .string(ns)), at: 0) }
                return .object(p)
            }
            let client = try global.connect()
            let started = Date()
            printErr("mnemo: planning prune of \(ns ?? "every namespace")...")
            let plan = try global.call(client, "ep.prune", params(dry: true))
            let planned = plan["deleted"]?.int64Value ?? 0
            var result = plan
            if !dryRun && planned > 0 {
                printErr("mnemo: deleting \(planned) records (keeping \(plan["kept"]?.text ?? "?"))...")
                result = try global.call(client, "ep.prune", params(dry: false))
            }
            let seconds = String(format: "%.2f", Date().timeIntervalSince(started))
            switch global.output {
            case .json: print(result.text)
            case .table:
                let verb = dryRun ? "would delete" : "deleted"
                print("\(verb) \(result["deleted"]?.text ?? "0") records, kept \(result["kept"]?.text ?? "?") (\(seconds) s)")
            }
        }
    }
}
