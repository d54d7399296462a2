import ArgumentParser
import Foundation
import MnemoClient
import MnemoProtocol

/// `mnemo watch|ep|sem|claim|task|inbox`: every tier from the shell, etcdctl style. Each
/// subcommand is one call (`watch` a stream); `-o json` prints the server's reply as it is,
/// `-o table` a table where the reply is a list, else the reply indented.

/// Prints a reply: raw JSON, or indented.
private func show(_ r: JSON, _ global: GlobalOptions) {
    print(global.output == .json ? r.text : Pretty.json(r))
}

/// Calls `method` with `params` on a new connection and prints the reply.
@discardableResult
private func callAndShow(_ global: GlobalOptions, _ method: String, _ params: [JSONMember]) throws -> JSON {
    let r = try global.call(try global.connect(), method, .object(params))
    show(r, global)
    return r
}

struct WatchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watch",
        abstract: "Stream the changes under a namespace (watch.subscribe), one line each, until interrupted or --count.",
        discussion: """
            Each line: revision, tier, kind, namespace, key or id (-o json: the event as sent). Resume \
            after a restart with --from-rev (the last revision seen + 1). Example: mnemo watch wf/42 --tiers wm,task
            """)
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Namespace (covers those below it).") var ns: String
    @Option(name: .long, help: "Only keys starting with this.") var prefix: String?
    @Option(name: .long, help: "Replay the changes from this revision first.") var fromRev: Int64?
    @Option(name: .long, help: "Tiers, comma-separated (wm, claim, task, inbox, result, ep, sem, barrier, vote).") var tiers: String?
    @Option(name: .long, help: "Stop after this many events.") var count: Int?

    func run() throws {
        try reporting {
            let client = try global.connect()
            var p: [JSONMember] = [.init("ns", .string(ns))]
            if let prefix { p.append(.init("prefix", .string(prefix))) }
            if let fromRev { p.append(.init("from_rev", .int(fromRev))) }
            if let tiers { p.append(.init("tiers", .array(tiers.split(separator: ",").map { .string(String($0)) }))) }
            _ = try global.call(client, "watch.subscribe", .object(p))
            var seen = 0
            while count.map({ seen < $0 }) ?? true {
                let next: JSON?
                do throws(ClientError) {
                    next = try client.nextNotification(timeoutMs: 1000)
                } catch {
                    throw Failure(error)
                }
                guard let n = next, n["method"] == "event", let e = n["params"] else { continue }
                if e["error"] != nil { throw Failure("mnemo: the watch ended: \(e.text)", code: 2) }
                switch global.output {
                case .json: print(e.text)
                case .table:
                    let item = e["key"]?.stringValue ?? e["id"]?.stringValue ?? ""
                    print([e["rev"]?.text ?? "", e["tier"]?.stringValue ?? "", e["kind"]?.stringValue ?? "",
                           e["ns"]?.stringValue ?? "", item].joined(separator: "\t"))
                }
                fflush(nil)  // every stream: each event goes out as it comes, even into a pipe
                seen += 1
            }
        }
    }
}

struct EpisodicCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ep", abstract: "Episodic memory: append, query and search records.",
        subcommands: [Append.self, Query.self, Find.self])

    struct Append: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Append a record (ep.append); prints its id and revision.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Namespace.") var ns: String
        @Argument(help: "What happened.") var content: String
        @Option(name: .long, help: "Kind (default observation).") var kind = "observation"
        @Option(name: .customLong("tag"), help: "A tag (repeat for more).") var tags: [String] = []
        @Option(name: .long, help: "The task it belongs to.") var task: String?
        @Option(name: .long, help: "Structured details (JSON).") var data: String?
        @Flag(name: .long, help: "Embed it for search by meaning.") var embed = false

        func run() throws {
            try reporting {
                var p: [JSONMember] = [.init("ns", .string(ns)), .init("kind", .string(kind)), .init("content", .string(content))]
                if !tags.isEmpty { p.append(.init("tags", .array(tags.map(JSON.string)))) }
                if let task { p.append(.init("task", .string(task))) }
                if let data { p.append(.init("data", try parsedJSON(data, "--data"))) }
                if embed { p.append(.init("embed", .bool(true))) }
                let r = try global.call(try global.connect(), "ep.append", .object(p))
                print(global.output == .json ? r.text : "\(r["id"]?.stringValue ?? "?") rev \(r["rev"]?.text ?? "?")")
            }
        }
    }

    struct Query: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List records under a namespace (ep.query), oldest first unless --desc.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Namespace (covers those below it).") var ns: String
        @Option(name: .long, help: "How many (default 100).") var limit: Int?
        @Flag(name: .long, help: "Newest first.") var desc = false
        @Option(name: .long, help: "Only this kind.") var kind: String?
        @Option(name: .long, help: "Only this task.") var task: String?
        @Option(name: .long, help: "Continue after this cursor.") var cursor: String?

        func run() throws {
            try reporting {
                var p: [JSONMember] = [.init("ns", .string(ns))]
                if let limit { p.append(.init("limit", .int(limit))) }
                if desc { p.append(.init("order", "desc")) }
                if let kind { p.append(.init("kind", .string(kind))) }
                if let task { p.append(.init("task", .string(task))) }
                if let cursor { p.append(.init("cursor", .string(cursor))) }
                let r = try global.call(try global.connect(), "ep.query", .object(p))
                printRecords(r["records"], r, global)
                if global.output == .table, let c = r["cursor"]?.stringValue { printErr("# more: --cursor \(c)") }
            }
        }
    }

    struct Find: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "search", abstract: "Search records by keywords and meaning (ep.search).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Namespace prefix.") var ns: String
        @Argument(help: "What to look for.") var text: String
        @Option(name: .long, help: "How many (default 10).") var limit: Int?
        @Option(name: .long, help: "keyword, vector or hybrid (default: the server's).") var mode: SearchModeOption?

        func run() throws {
            try reporting {
                var p: [JSONMember] = [.init("ns", .string(ns)), .init("text", .string(text))]
                if let limit { p.append(.init("limit", .int(limit))) }
                if let mode { p.append(.init("mode", .string(mode.rawValue))) }
                let r = try global.call(try global.connect(), "ep.search", .object(p))
                printRecords(r["hits"], r, global)
            }
        }
    }
}

/// Episodic records as a table (id, namespace, kind, content) or the reply as JSON.
private func printRecords(_ list: JSON?, _ reply: JSON, _ global: GlobalOptions) {
    switch global.output {
    case .json: print(reply.text)
    case .table:
        let rows = (list?.arrayValue ?? []).map { r in
            [r["id"]?.stringValue ?? "", r["ns"]?.stringValue ?? "", r["kind"]?.stringValue ?? "",
             String((r["content"]?.stringValue ?? "").prefix(100))]
        }
        if rows.isEmpty { printErr("# none") } else { print(Pretty.table(header: ["ID", "NS", "KIND", "CONTENT"], rows: rows)) }
    }
}

struct SemanticCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sem", abstract: "Semantic memory: upsert, search, get, history and delete facts.",
        subcommands: [Upsert.self, Find.self, Get.self, History.self, Del.self])

    struct Upsert: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Store a fact (sem.upsert); the same as mnemo remember.")
        @OptionGroup var command: Remember
        func run() throws { try command.run() }
    }

    struct Find: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "search", abstract: "Recall facts (sem.search); the same as mnemo search.")
        @OptionGroup var command: Search
        func run() throws { try command.run() }
    }

    struct Get: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a fact (sem.get); exit 1 if absent.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Namespace.") var ns: String
        @Argument(help: "Fact id.") var id: String
        @Option(name: .long, help: "The version believed at this time (2026-12-01T00:00:00.000Z).") var asOf: String?
        @Flag(name: .long, help: "Its past versions too.") var history = false

        func run() throws {
            try reporting {
                var p: [JSONMember] = [.init("ns", .string(ns)), .init("id", .string(id))]
                if let asOf { p.append(.init("as_of", .string(asOf))) }
                if history { p.append(.init("include_history", .bool(true))) }
                let r = try callAndShow(global, "sem.get", p)
                guard r["found"] == .bool(true) else { throw Failure("mnemo: \(ns) \(id): not found", code: 1) }
            }
        }
    }

    struct History: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a fact's versions, newest first (sem.history); exit 1 if absent.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Namespace.") var ns: String
        @Argument(help: "Fact id.") var id: String

        func run() throws {
            try reporting {
                let r = try global.call(try global.connect(), "sem.history", .object([.init("ns", .string(ns)), .init("id", .string(id))]))
                guard r["found"] == .bool(true) else { throw Failure("mnemo: \(ns) \(id): not found", code: 1) }
                switch global.output {
                case .json: print(r.text)
                case .table:
                    let rows = (r["versions"]?.arrayValue ?? []).map { v in
                        [v["version"]?.text ?? "", v["valid_from"]?.stringValue ?? "", v["valid_to"]?.stringValue ?? "-",
                         v["current"] == .bool(true) ? "yes" : "", String((v["text"]?.stringValue ?? "").prefix(80))]
                    }
                    print(Pretty.table(header: ["VERSION", "VALID FROM", "VALID TO", "CURRENT", "TEXT"], rows: rows))
                }
            }
        }
    }

    struct Del: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a fact and its past versions (sem.delete); exit 1 if absent.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Namespace.") var ns: String
        @Argument(help: "Fact id.") var id: String

        func run() throws {
            try reporting {
                let r = try callAndShow(global, "sem.delete", [.init("ns", .string(ns)), .init("id", .string(id))])
                guard r["deleted"] == .bool(true) else { throw Failure("mnemo: \(ns) \(id): not found", code: 1) }
            }
        }
    }
}

struct ClaimCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "claim", abstract: "Claims: leases with fencing tokens on a resource.",
        subcommands: [Acquire.self, Renew.self, Release.self, List.self])

    struct Acquire: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Claim a resource (claim.acquire); prints the token; exit 2 CLAIMED when another agent holds it.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Namespace.") var ns: String
        @Argument(help: "Resource.") var resource: String
        @Option(name: .long, help: "Lease in milliseconds.") var ttl: Int64
        @Option(name: .long, help: "Milliseconds to wait for it to free (default 0).") var wait: Int64?

        func run() throws {
            try reporting {
                var p: [JSONMember] = [.init("ns", .string(ns)), .init("resource", .string(resource)), .init("ttl_ms", .int(ttl))]
                if let wait { p.append(.init("wait_ms", .int(wait))) }
                let r = try global.call(try global.connect(), "claim.acquire", .object(p))
                print(global.output == .json ? r.text : "token \(r["token"]?.text ?? "?") expires \(r["expires_at"]?.stringValue ?? "?")")
            }
        }
    }

    struct Renew: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Extend a held claim (claim.renew); exit 2 FENCED when the token is stale.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Namespace.") var ns: String
        @Argument(help: "Resource.") var resource: String
        @Argument(help: "The token acquire gave.") var token: Int64
        @Option(name: .long, help: "New lease in milliseconds from now.") var ttl: Int64

        func run() throws {
            try reporting {
                try callAndShow(global, "claim.renew", [.init("ns", .string(ns)), .init("resource", .string(resource)),
                                                        .init("token", .int(token)), .init("ttl_ms", .int(ttl))])
            }
        }
    }

    struct Release: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Release a claim (claim.release); exit 1 when it was not held with that token.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Namespace.") var ns: String
        @Argument(help: "Resource.") var resource: String
        @Argument(help: "The token acquire gave.") var token: Int64

        func run() throws {
            try reporting {
                let r = try callAndShow(global, "claim.release", [.init("ns", .string(ns)), .init("resource", .string(resource)),
                                                                  .init("token", .int(token))])
                guard r["released"] == .bool(true) else { throw Failure("mnemo: \(resource): not held with token \(token)", code: 1) }
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ls", abstract: "List the live claims of a namespace (claim.list).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Namespace.") var ns: String

        func run() throws {
            try reporting {
                let r = try global.call(try global.connect(), "claim.list", .object([.init("ns", .string(ns))]))
                switch global.output {
                case .json: print(r.text)
                case .table:
                    let rows = (r["claims"]?.arrayValue ?? []).map { c in
                        [c["resource"]?.stringValue ?? "", c["holder"]?.stringValue ?? "", c["token"]?.text ?? "",
                         c["expires_at"]?.stringValue ?? ""]
                    }
                    if rows.isEmpty { printErr("# none") } else { print(Pretty.table(header: ["RESOURCE", "HOLDER", "TOKEN", "EXPIRES"], rows: rows)) }
                }
            }
        }
    }
}

struct TaskCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "task", abstract: "Tasks: read a task's state and history, move it along its state machine.",
        subcommands: [Get.self, Move.self])

    struct Get: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a task's state and history (task.get).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Namespace.") var ns: String
        @Argument(help: "Task.") var task: String

        func run() throws {
            try reporting { try callAndShow(global, "task.get", [.init("ns", .string(ns)), .init("task", .string(task))]) }
        }
    }

    struct Move: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Move a task to a state (task.transition); exit 2 INVALID_TRANSITION, CONFLICT or FENCED when refused.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Namespace.") var ns: String
        @Argument(help: "Task.") var task: String
        @Argument(help: "The new state (pending, claimed, running, done, failed, cancelled).") var to: String
        @Option(name: .long, help: "Only from this state.") var from: String?
        @Option(name: .long, help: "Fence with the claim on this resource...") var fenceResource: String?
        @Option(name: .long, help: "...and this token.") var fenceToken: Int64?

        func validate() throws {
            guard (fenceResource == nil) == (fenceToken == nil) else { throw ValidationError("give --fence-resource and --fence-token together") }
        }

        func run() throws {
            try reporting {
                var p: [JSONMember] = [.init("ns", .string(ns)), .init("task", .string(task)), .init("to", .string(to))]
                if let from { p.append(.init("from", .string(from))) }
                if let fenceResource, let fenceToken {
                    p.append(.init("fence", .object([.init("resource", .string(fenceResource)), .init("token", .int(fenceToken))])))
                }
                try callAndShow(global, "task.transition", p)
            }
        }
    }
}

struct InboxCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inbox", abstract: "Inboxes: post to an agent, read and acknowledge messages.",
        subcommands: [Post.self, Read.self, Ack.self])

    struct Post: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Post a message to an agent's inbox (inbox.post).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Namespace.") var ns: String
        @Argument(help: "The agent it is for.") var to: String
        @Argument(help: "Message type, e.g. review_request.") var type: String
        @Argument(help: "Content (JSON, or text).") var content: String

        func run() throws {
            try reporting {
                let r = try global.call(try global.connect(), "inbox.post", .object([
                    .init("ns", .string(ns)), .init("to", .string(to)), .init("type", .string(type)), .init("content", jsonOrText(content)),
                ]))
                print(global.output == .json ? r.text : "\(r["id"]?.stringValue ?? "?") rev \(r["rev"]?.text ?? "?")")
            }
        }
    }

    struct Read: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Read the messages addressed to you (--agent) in a namespace (inbox.read).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Namespace.") var ns: String
        @Flag(name: .long, help: "Only messages not yet acknowledged.") var unacked = false
        @Option(name: .long, help: "How many (default: the server's).") var limit: Int?

        func run() throws {
            try reporting {
                var p: [JSONMember] = [.init("ns", .string(ns))]
                if unacked { p.append(.init("unacked_only", .bool(true))) }
                if let limit { p.append(.init("limit", .int(limit))) }
                let r = try global.call(try global.connect(), "inbox.read", .object(p))
                switch global.output {
                case .json: print(r.text)
                case .table:
                    let rows = (r["entries"]?.arrayValue ?? []).map { m in
                        [m["id"]?.stringValue ?? "", m["from"]?.stringValue ?? "",
                         m["type"]?.stringValue ?? "", m["acked"] == .bool(true) ? "yes" : "", String((m["content"]?.text ?? "").prefix(80))]
                    }
                    if rows.isEmpty { printErr("# none") } else { print(Pretty.table(header: ["ID", "FROM", "TYPE", "ACKED", "CONTENT"], rows: rows)) }
                }
            }
        }
    }

    struct Ack: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Acknowledge messages by id (inbox.ack).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Namespace.") var ns: String
        @Argument(help: "Message ids.") var ids: [String]

        func run() throws {
            try reporting { try callAndShow(global, "inbox.ack", [.init("ns", .string(ns)), .init("ids", .array(ids.map(JSON.string)))]) }
        }
    }
}

/// Text that is JSON becomes that value; other text a string (as `mnemo set` does).
func jsonOrText(_ text: String) -> JSON { (try? JSONParser.parse(text)) ?? .string(text) }

/// `text` parsed as JSON; exit 64 naming `option` when it is not.
func parsedJSON(_ text: String, _ option: String) throws -> JSON {
    guard let v = try? JSONParser.parse(text) else { throw Failure("mnemo: \(option) must be JSON", code: 64) }
    return v
}
