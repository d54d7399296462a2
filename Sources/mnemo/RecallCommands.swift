import ArgumentParser
import MnemoClient
import MnemoProtocol

/// `--mode`: which arms a text search runs.
enum SearchModeOption: String, ExpressibleByArgument, CaseIterable {
    case vector, keyword, hybrid
}

/// `--on-conflict`: what a near-duplicate stating something else decides.
enum OnConflictOption: String, ExpressibleByArgument, CaseIterable {
    case supersede, reject
    case keepBoth = "keep_both"
}

struct Remember: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Store a fact in semantic memory (sem.upsert); mnemod embeds the text.",
        discussion: """
            Prints the fact's id and version. Example: \
            mnemo remember kb/ops "The staging database is reset every night" --tag ops
            """)
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Namespace, e.g. kb/ops.") var ns: String
    @Argument(help: "The fact, as a sentence.") var text: String
    @Option(name: .long, help: "Stable id: storing again under it replaces the fact.") var id: String?
    @Option(name: .customLong("tag"), help: "A tag (repeat for more).") var tags: [String] = []
    @Option(name: .long, help: "Id of a fact this one replaces (it is marked superseded).") var supersedes: String?
    @Option(name: .long, help: "Forget the fact after this many milliseconds.") var ttlMs: Int64?
    @Flag(name: .long, help: "Report existing near-duplicates (dedupe: report).") var similar = false
    @Option(name: .long, help: "supersede, keep_both or reject a near-duplicate that states something else.")
    var onConflict: OnConflictOption?
    @Option(name: .long, help: "When the fact began to hold (2026-12-01T00:00:00.000Z; default: now).") var validFrom: String?
    @Option(name: .long, help: "When it stops holding (same form; default: open).") var validTo: String?

    func run() throws {
        try reporting {
            var params: [JSONMember] = [.init("ns", .string(ns)), .init("text", .string(text))]
            if let id { params.append(.init("id", .string(id))) }
            if !tags.isEmpty { params.append(.init("tags", .array(tags.map(JSON.string)))) }
            if let supersedes { params.append(.init("supersedes", .string(supersedes))) }
            if let ttlMs { params.append(.init("ttl_ms", .int(ttlMs))) }
            if similar { params.append(.init("dedupe", "report")) }
            if let onConflict { params.append(.init("on_conflict", .string(onConflict.rawValue))) }
            if let validFrom { params.append(.init("valid_from", .string(validFrom))) }
            if let validTo { params.append(.init("valid_to", .string(validTo))) }
            let r = try global.call(try global.connect(), "sem.upsert", .object(params))
            switch global.output {
            case .json: print(r.text)
            case .table:
                print("\(r["id"]?.stringValue ?? "?") version \(r["version"]?.text ?? "?")")
                if r["truncated"] == .bool(true) { printErr("# the text was longer than the model reads: embedded its beginning") }
                for s in r["similar"]?.arrayValue ?? [] {
                    printErr("# similar: \(s["id"]?.stringValue ?? "?") (score \(s["score"]?.text ?? "?"))")
                }
                for s in r["conflicts"]?.arrayValue ?? [] {
                    printErr("# conflicts with: \(s["id"]?.stringValue ?? "?") (score \(s["score"]?.text ?? "?"))")
                }
                if let superseded = r["superseded"]?.stringValue { printErr("# superseded: \(superseded)") }
            }
        }
    }
}

struct Search: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Recall facts (sem.search) or, with --episodes, past episodes (ep.search) by meaning and keywords.",
        discussion: """
            NS is a namespace prefix. Prints one hit a line, best first: score, id, namespace, text. \
            Example: mnemo search kb "when is staging reset?" -k 3
            """)
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Namespace prefix, e.g. kb.") var ns: String
    @Argument(help: "What to recall.") var text: String
    @Option(name: .short, help: "How many hits (default 10).") var k: Int = 10
    @Option(name: .long, help: "vector, keyword or hybrid (default: the server's).") var mode: SearchModeOption?
    @Option(name: .customLong("tag"), help: "Only facts with this tag (repeat for more).") var tags: [String] = []
    @Flag(name: .long, help: "Search episodic memory instead of facts.") var episodes = false
    @Option(name: .long, help: "Facts as believed at this time (2026-12-01T00:00:00.000Z).") var asOf: String?
    @Flag(name: .long, help: "Past versions of facts too.") var history = false

    func run() throws {
        try reporting {
            guard k >= 1 else { throw Failure("mnemo: -k must be at least 1", code: 64) }
            var params: [JSONMember] = [.init("ns", .string(ns)), .init("text", .string(text))]
            params.append(.init(episodes ? "limit" : "k", .int(k)))
            if let mode { params.append(.init("mode", .string(mode.rawValue))) }
            if !tags.isEmpty {
                guard !episodes else { throw Failure("mnemo: --tag filters facts only", code: 64) }
                params.append(.init("filter", .object([.init("tags", .array(tags.map(JSON.string)))])))
            }
            if asOf != nil || history {
                guard !episodes else { throw Failure("mnemo: --as-of and --history search facts only", code: 64) }
                if let asOf { params.append(.init("as_of", .string(asOf))) }
                if history { params.append(.init("include_history", .bool(true))) }
            }
            let r = try global.call(try global.connect(), episodes ? "ep.search" : "sem.search", .object(params))
            switch global.output {
            case .json: print(r.text)
            case .table:
                let hits = r["hits"]?.arrayValue ?? []
                let rows = hits.map { h in
                    [h["score"].map { String(format: "%.4f", $0.doubleValue ?? 0) } ?? "",
                     h["id"]?.stringValue ?? "", h["ns"]?.stringValue ?? "",
                     String((h[episodes ? "content" : "text"]?.stringValue ?? "").prefix(100))]
                }
                if rows.isEmpty { printErr("# no hits") } else { print(Pretty.table(header: ["SCORE", "ID", "NS", "TEXT"], rows: rows)) }
                if let skipped = r["skipped"]?.arrayValue, !skipped.isEmpty {
                    printErr("# skipped (other model or dims): " + skipped.compactMap(\.stringValue).joined(separator: ", "))
                }
            }
        }
    }
}
