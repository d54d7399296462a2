import ArgumentParser
import MnemoClient
import MnemoProtocol

struct Get: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print a key's value (exit 1 if absent).")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Namespace, e.g. wf/42.") var ns: String
    @Argument(help: "Key.") var key: String
    @Option(name: .long, help: "Answer once the node has applied this revision (another agent's write's rev; cluster mode).")
    var minRev: Int64?
    @Flag(name: .long, help: "Read the cluster's latest state (cluster mode; on a single node the same as without).")
    var linearizable = false

    func run() throws {
        try reporting {
            let client = try global.connect()
            var params = [JSONMember("ns", .string(ns)), JSONMember("key", .string(key))]
            if let minRev { params.append(JSONMember("min_rev", .int(minRev))) }
            if linearizable { params.append(JSONMember("consistency", .string("linearizable"))) }
            let r = try global.call(client, "wm.get", .object(params))
            guard r["found"] == .bool(true) else { throw Failure("mnemo: \(ns) \(key): not found", code: 1) }
            switch global.output {
            case .json: print(r.text)
            case .table:
                print(Pretty.json(r["value"] ?? .null))
                var meta = ["version \(r["version"]?.text ?? "?")"]
                if let e = r["expires_at"]?.stringValue { meta.append("expires \(e)") }
                if let p = r["provenance"], let a = p["agent"]?.stringValue, let at = p["at"]?.stringValue {
                    meta.append("by \(a) at \(at)")
                }
                printErr("# " + meta.joined(separator: ", "))
            }
        }
    }
}

struct Set: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Set a key. VALUE is parsed as JSON; text that is not JSON is stored as a string.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Namespace.") var ns: String
    @Argument(help: "Key.") var key: String
    @Argument(help: "Value (JSON, or any text to store as a string).") var value: String
    @Option(name: .long, help: "Time to live in milliseconds.") var ttl: Int64?
    @Option(name: .long, help: "Only if the key's current version is this (else exit 2, CONFLICT).") var ifVersion: Int64?
    @Flag(name: .long, help: "Only if the key does not exist (else exit 2, CONFLICT).") var ifAbsent = false
    @Flag(name: .long, help: "Store VALUE as a string even if it parses as JSON.") var string = false

    func run() throws {
        try reporting {
            let v: JSON = string ? .string(value) : jsonOrText(value)
            var params: [JSONMember] = [.init("ns", .string(ns)), .init("key", .string(key)), .init("value", v)]
            if let ttl { params.append(.init("ttl_ms", .int(ttl))) }
            if let ifVersion { params.append(.init("if_version", .int(ifVersion))) }
            if ifAbsent { params.append(.init("if_absent", true)) }
            let r = try global.call(try global.connect(), "wm.set", .object(params))
            switch global.output {
            case .json: print(r.text)
            case .table:
                var line = "version \(r["version"]?.text ?? "?")"
                if let e = r["expires_at"]?.stringValue { line += ", expires \(e)" }
                print(line)
            }
        }
    }
}

struct Del: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Delete a key (exit 1 if absent).")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Namespace.") var ns: String
    @Argument(help: "Key.") var key: String
    @Option(name: .long, help: "Only if the key's current version is this.") var ifVersion: Int64?

    func run() throws {
        try reporting {
            var params: [JSONMember] = [.init("ns", .string(ns)), .init("key", .string(key))]
            if let ifVersion { params.append(.init("if_version", .int(ifVersion))) }
            let r = try global.call(try global.connect(), "wm.del", .object(params))
            if global.output == .json { print(r.text) }
            guard r["deleted"] == .bool(true) else { throw Failure("mnemo: \(ns) \(key): not found", code: 1) }
        }
    }
}

struct Expire: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Set a key's time to live, or remove it with --persist (wm.expire; exit 1 if absent).",
        discussion: "Example: mnemo expire wf/42 draft 60000")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Namespace.") var ns: String
    @Argument(help: "Key.") var key: String
    @Argument(help: "Milliseconds from now (omit with --persist).") var ttlMs: Int64?
    @Flag(name: .long, help: "Remove the TTL: the key lives until deleted.") var persist = false

    func validate() throws {
        guard (ttlMs != nil) != persist else { throw ValidationError("give TTL_MS or --persist, not both or neither") }
    }

    func run() throws {
        try reporting {
            let params: [JSONMember] = [.init("ns", .string(ns)), .init("key", .string(key)), .init("ttl_ms", ttlMs.map(JSON.int) ?? .null)]
            let r = try global.call(try global.connect(), "wm.expire", .object(params))
            if global.output == .json { print(r.text) }
            guard r["found"] != .bool(false) else { throw Failure("mnemo: \(ns) \(key): not found", code: 1) }
            if global.output == .table { print("version \(r["version"]?.text ?? "?")") }
        }
    }
}

struct Ls: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the keys of a namespace in byte order.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Namespace.") var ns: String
    @Option(name: .long, help: "Only keys starting with this.") var prefix: String?
    @Option(name: .long, help: "Page size (1...1000).") var limit: Int = 100
    @Flag(name: .long, help: "Follow cursors until every key is listed.") var all = false
    @Option(name: .long, help: "Start after this cursor (printed when more keys follow).") var cursor: String?

    func run() throws {
        try reporting {
            let client = try global.connect()
            var cursor = self.cursor
            var rows: [[String]] = []
            var pages: [JSON] = []
            repeat {
                var params: [JSONMember] = [.init("ns", .string(ns)), .init("limit", .int(limit))]
                if let prefix { params.append(.init("prefix", .string(prefix))) }
                if let cursor { params.append(.init("cursor", .string(cursor))) }
                let r = try global.call(client, "wm.list", .object(params))
                pages.append(r)
                for item in r["items"]?.arrayValue ?? [] {
                    rows.append([item["key"]?.stringValue ?? "", item["version"]?.text ?? "",
                                 item["expires_at"]?.stringValue ?? "-"])
                }
                cursor = r["cursor"]?.stringValue
            } while all && cursor != nil
            switch global.output {
            case .json: for page in pages { print(page.text) }
            case .table:
                print(Pretty.table(header: ["KEY", "VERSION", "EXPIRES"], rows: rows))
                if let cursor { printErr("# more: --cursor is \(cursor); use --all to list everything") }
            }
        }
    }
}

struct Health: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Check that mnemod answers.")
    @OptionGroup var global: GlobalOptions

    func run() throws {
        try reporting {
            let r = try global.call(try global.connect(), "admin.health", [:])
            switch global.output {
            case .json: print(r.text)
            case .table:
                print("\(r["status"]?.stringValue ?? "?") uptime_ms=\(r["uptime_ms"]?.text ?? "?") rev=\(r["rev"]?.text ?? "?")")
            }
        }
    }
}

struct Stats: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show counts, sizes and per-method latency.")
    @OptionGroup var global: GlobalOptions

    func run() throws {
        try reporting {
            let r = try global.call(try global.connect(), "admin.stats", [:])
            switch global.output {
            case .json: print(r.text)
            case .table:
                let wm = r["working"]
                print("uptime_ms=\(r["uptime_ms"]?.text ?? "?") rev=\(r["rev"]?.text ?? "?") connections=\(r["connections"]?["current"]?.text ?? "?") keys=\(wm?["keys"]?.text ?? "?") bytes=\(wm?["bytes"]?.text ?? "?")")
                let rows = (r["methods"]?.objectValue ?? []).map { m in
                    [m.key] + ["count", "errors", "p50_us", "p99_us", "max_us"].map { m.value[$0]?.text ?? "" }
                }
                print(Pretty.table(header: ["METHOD", "COUNT", "ERRORS", "P50_US", "P99_US", "MAX_US"], rows: rows))
            }
        }
    }
}

struct Call: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Call any method with JSON params and print the result.",
        discussion: "Example: mnemo call wm.txn '{\"ops\":[{\"op\":\"set\",\"ns\":\"a\",\"key\":\"k\",\"value\":1}]}'")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Method, e.g. wm.get.") var method: String
    @Argument(help: "Params as a JSON object.") var params: String = "{}"

    func run() throws {
        try reporting {
            let p: JSON
            do {
                p = try JSONParser.parse(params)
            } catch {
                throw Failure("mnemo: params are not JSON: \(error)", code: 64)
            }
            guard p.objectValue != nil else { throw Failure("mnemo: params must be a JSON object", code: 64) }
            let r = try global.call(try global.connect(), method, p)
            print(global.output == .json ? r.text : Pretty.json(r))
        }
    }
}
