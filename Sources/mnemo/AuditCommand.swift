import ArgumentParser
import MnemoProtocol

/// `mnemo audit`: the audit log (audit.query), newest first.
struct Audit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show audit entries (audit.query): denials, and mutations when principals are configured.",
        discussion: "Newest first. Example: mnemo audit wf --by planner --since 2026-11-22T00:00:00.000Z")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Namespace prefix (default: every namespace the caller administers).") var ns: String?
    @Option(name: .customLong("by"), help: "Only calls by this agent.") var agent: String?
    @Option(name: .long, help: "Only entries at or after this RFC 3339 time (with milliseconds).") var since: String?
    @Option(name: .long, help: "At most this many entries.") var limit: Int = 100

    func run() throws {
        try reporting {
            var p: [JSONMember] = [.init("limit", .int(Int64(limit)))]
            if let ns { p.append(.init("ns", .string(ns))) }
            if let agent { p.append(.init("agent", .string(agent))) }
            if let since { p.append(.init("since", .string(since))) }
            let client = try global.connect()
            let result = try global.call(client, "audit.query", .object(p))
            switch global.output {
            case .json: print(result.text)
            case .table:
                for e in result["entries"]?.arrayValue ?? [] {
                    func f(_ k: String) -> String { e[k].map { $0.isNull ? "-" : ($0.stringValue ?? $0.text) } ?? "-" }
                    let outcome = e["allowed"]?.boolValue == false ? "DENIED \(f("error"))" : (e["error"]?.isNull == false ? f("error") : "ok")
                    print("\(f("at"))  \(f("principal"))/\(f("agent")) uid=\(f("uid")) pid=\(f("pid"))  \(f("method")) \(f("ns")) \(f("target"))  \(outcome) rev=\(f("rev"))")
                }
            }
        }
    }
}
