import Foundation
import MnemoProtocol
import Testing

/// `mnemo mcp` driven as an MCP host drives it: JSON-RPC lines on its stdin, replies on its
/// stdout (initialize, tools/list, tools/call), against a real daemon.
@Suite("MCP bridge")
struct MCPTests {
    @Test func scriptedSessionCoversEveryTool() throws {
        let daemon = try Daemon()
        let a = try MCPSession(socket: daemon.socket, agent: "planner", ns: "wf/7")
        let info = try a.initialize()
        #expect(info["serverInfo"]?["name"] == "mnemo")
        #expect(info["capabilities"]?["tools"] != nil)

        let tools = try a.request("tools/list")["tools"]?.arrayValue ?? []
        let names = Swift.Set(tools.compactMap { $0["name"]?.stringValue })
        #expect(names == ["remember_episode", "recall_episodes", "remember_fact", "recall_facts", "scratchpad_read",
                          "scratchpad_write", "claim_task", "release_task", "inbox_post", "inbox_read",
                          "barrier_arrive", "propose", "vote", "decision"])
        for t in tools {
            #expect(t["inputSchema"]?["type"] == "object")
            #expect(t["description"]?.stringValue?.isEmpty == false)
        }

        // Episodic: remember, then recall by keywords and as the latest records.
        _ = try a.tool("remember_episode", ["content": "deployed the billing service to staging", "tags": ["deploy"]])
        _ = try a.tool("remember_episode", ["content": "the login page test failed twice", "kind": "decision"])
        let found = try a.tool("recall_episodes", ["text": "billing staging"])
        #expect(found["hits"]?.arrayValue?.first?["content"] == "deployed the billing service to staging")
        _ = try a.tool("remember_episode", ["content": "the nightly backup failed", "embed": true])
        let meaning = try a.tool("recall_episodes", ["text": "backup failing at night", "mode": "vector"])
        #expect(meaning["hits"]?.arrayValue?.map { $0["content"] } == ["the nightly backup failed"], "only the embedded record")
        #expect(try a.tool("recall_episodes", ["limit": 1, "mode": "hybrid"])["records"]?.arrayValue?.count == 1)
        let latest = try a.tool("recall_episodes", ["limit": 1])
        #expect(latest["records"]?.arrayValue?.map { $0["content"] } == ["the nightly backup failed"])

        // Semantic: the closest fact comes first, stamped with the bridge's agent.
        _ = try a.tool("remember_fact", ["text": "the user prefers tea over coffee", "id": "drink"])
        _ = try a.tool("remember_fact", ["text": "deploys happen on tuesdays", "id": "deploys"])
        let hits = try a.tool("recall_facts", ["text": "does the user prefer tea or coffee", "k": 1])["hits"]?.arrayValue
        #expect(hits?.first?["id"] == "drink")
        #expect(hits?.first?["provenance"]?["agent"] == "planner")
        // A fact that held until it was replaced: as_of still finds it.
        _ = try a.tool("remember_fact", ["text": "standup is at nine", "id": "standup", "valid_from": "2026-01-01T00:00:00.000Z"])
        let moved = try a.tool("remember_fact", ["text": "standup is at ten", "id": "standup", "valid_from": "2026-06-01T00:00:00.000Z"])
        #expect(moved["id"] == "standup")
        let then = try a.tool("recall_facts", ["text": "when is standup", "k": 1, "as_of": "2026-03-01T00:00:00.000Z"])["hits"]?.arrayValue
        #expect(then?.first?["text"] == "standup is at nine" && then?.first?["current"] == false)

        // Scratchpad: write, read with its version, a stale compare-and-set is refused.
        let written = try a.tool("scratchpad_write", ["key": "plan", "value": ["step": 1]])
        let version = written["version"]
        let read = try a.tool("scratchpad_read", ["key": "plan"])
        #expect(read["value"] == ["step": 1])
        #expect(read["version"] == version)
        let stale = try a.toolError("scratchpad_write", ["key": "plan", "value": 2, "if_version": 99])
        #expect(stale.hasPrefix("CONFLICT"), "\(stale)")
        #expect(try a.tool("scratchpad_read", ["prefix": "pl"])["items"]?.arrayValue?.count == 1)

        // Claims: a second agent (its own bridge) cannot take a held task until it is released.
        let b = try MCPSession(socket: daemon.socket, agent: "worker", ns: "wf/7")
        _ = try b.initialize()
        let claim = try a.tool("claim_task", ["resource": "task-1", "ttl_ms": 30_000])
        #expect(claim["granted"] == true)
        let busy = try b.toolError("claim_task", ["resource": "task-1"])
        #expect(busy.hasPrefix("CLAIMED: claimed by planner"), "\(busy)")
        _ = try a.tool("release_task", ["resource": "task-1", "token": claim["token"] ?? .null])
        #expect(try b.tool("claim_task", ["resource": "task-1"])["granted"] == true)

        // Inbox: posted by one agent, read and acknowledged by the other.
        _ = try a.tool("inbox_post", ["to": "worker", "content": ["do": "task-2"]])
        let inbox = try b.tool("inbox_read", ["ack": true])["entries"]?.arrayValue ?? []
        #expect(inbox.map { $0["from"] } == ["planner"])
        #expect(inbox.first?["content"] == ["do": "task-2"])
        #expect(try b.tool("inbox_read", [:])["entries"]?.arrayValue?.isEmpty == true)

        // Agreement: a proposal both must accept; the barrier opens at the second arrival.
        _ = try a.tool("propose", ["proposal": "ship", "voters": ["planner", "worker"]])
        #expect(try a.tool("vote", ["proposal": "ship", "choice": "yes"])["status"] == "open")
        #expect(try b.tool("vote", ["proposal": "ship", "choice": "yes"])["status"] == "accepted")
        #expect(try a.tool("decision", ["proposal": "ship", "wait_ms": 0])["token"]?.int64Value != nil)
        #expect(try a.tool("barrier_arrive", ["name": "go", "parties": 2, "wait_ms": 0])["state"] == "waiting")
        #expect(try b.tool("barrier_arrive", ["name": "go", "parties": 2])["state"] == "open")

        // The namespace of a call overrides the default.
        _ = try a.tool("scratchpad_write", ["key": "k", "value": "elsewhere", "ns": "wf/8"])
        #expect(try a.tool("scratchpad_read", ["key": "k"])["found"] == false)
        #expect(try a.tool("scratchpad_read", ["key": "k", "ns": "wf/8"])["value"] == "elsewhere")
        try a.expectOnlyProtocolOnStdout()
    }

    @Test func badCallsAreToolErrorsAndTheBridgeReconnects() throws {
        var daemon = try Daemon()
        let s = try MCPSession(socket: daemon.socket, agent: "solo", ns: nil)
        _ = try s.initialize()
        #expect(try s.toolError("scratchpad_read", ["key": "k"]).contains("no namespace"))
        #expect(try s.toolError("scratchpad_read", ["key": "k", "ns": "a", "colour": "red"]).contains("unknown argument colour"))
        #expect(try s.toolError("scratchpad_write", ["ns": "a", "key": "k"]).contains("missing argument value"))
        #expect(try s.toolError("scratchpad_read", ["ns": "Bad NS!", "key": "k"]).contains("invalid params"))
        // An unknown tool is a protocol error, not a tool result.
        let unknown = try s.send("tools/call", ["name": "format_disk", "arguments": [:]])
        #expect(unknown["error"] != nil)

        _ = try s.tool("scratchpad_write", ["ns": "a", "key": "k", "value": 1])
        daemon = try daemon.restarted()  // kill -9, then the same socket and data again
        // The call that finds the connection broken fails (it may have been applied); the
        // next one reconnects.
        var reconnected = false
        for _ in 0..<3 where !reconnected {
            let r = try s.send("tools/call", ["name": "scratchpad_read", "arguments": ["ns": "a", "key": "k"]])
            reconnected = r["result"]?["isError"] == false && r["result"]?["structuredContent"]?["value"] == 1
        }
        #expect(reconnected)
        try s.expectOnlyProtocolOnStdout()
    }
}

/// One `mnemo mcp` process: requests are sent one at a time and answered in turn.
@Suite("mnemo mcp: JSON-RPC framing errors")
struct MCPFramingTests {
    @Test func framingErrorsAreAnsweredAsTheSpecificationSays() throws {
        let daemon = try Daemon()
        defer { daemon.stop() }
        let s = try MCPSession(socket: daemon.socket, agent: "framing", ns: "wf/1")
        _ = try s.initialize()
        let notJSON = try s.raw("{not json")
        #expect(notJSON["id"] == .null && notJSON["error"]?["code"] == -32700, "\(notJSON.text)")
        let badMethod = try s.raw(#"{"jsonrpc":"2.0","id":4,"method":7}"#)
        #expect(badMethod["id"] == 4 && badMethod["error"]?["code"] == -32600, "\(badMethod.text)")
        let notAMessage = try s.raw(#"{"foo":1}"#)
        #expect(notAMessage["id"] == .null && notAMessage["error"]?["code"] == -32600, "\(notAMessage.text)")
        let oldVersion = try s.raw(#"{"jsonrpc":"1.0","id":"x","method":"tools/list"}"#)
        #expect(oldVersion["id"] == "x" && oldVersion["error"]?["code"] == -32600, "\(oldVersion.text)")
        let emptyBatch = try s.raw("[]")
        #expect(emptyBatch["id"] == .null && emptyBatch["error"]?["code"] == -32600, "\(emptyBatch.text)")
        // The session goes on.
        #expect(try s.request("tools/list")["tools"]?.arrayValue?.isEmpty == false)
        try s.expectOnlyProtocolOnStdout()
    }
}

final class MCPSession {
    let process = Process()
    private let input = Pipe()
    private let output = Pipe()
    private var buffer: [UInt8] = []
    private var nextID = 1
    /// Every line the bridge wrote on stdout.
    private(set) var lines: [String] = []

    init(socket: String, agent: String, ns: String?) throws {
        process.executableURL = URL(fileURLWithPath: Daemon.binary("mnemo"))
        process.arguments = ["mcp", "--socket", socket, "--agent", agent] + (ns.map { ["--ns", $0] } ?? [])
        var env = ProcessInfo.processInfo.environment
        env["MNEMO_NAMESPACE"] = nil
        process.environment = env
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
    }

    deinit {
        try? input.fileHandleForWriting.close()
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }

    func initialize() throws -> JSON {
        let r = try request("initialize", ["protocolVersion": "2025-06-18", "capabilities": [:],
                                           "clientInfo": ["name": "mnemo-tests", "version": "1"]])
        write(["jsonrpc": "2.0", "method": "notifications/initialized"])
        return r
    }

    /// The result of a request; fails the test on an error.
    func request(_ method: String, _ params: JSON = [:]) throws -> JSON {
        let reply = try send(method, params)
        guard let result = reply["result"] else { throw DaemonError("\(method) failed: \(reply.text)") }
        return result
    }

    /// A tool's structured result; fails on a tool error.
    func tool(_ name: String, _ args: JSON) throws -> JSON {
        let r = try request("tools/call", ["name": .string(name), "arguments": args])
        guard r["isError"] == false, let structured = r["structuredContent"] else {
            throw DaemonError("\(name) failed: \(r.text)")
        }
        // The text content carries the same result, for hosts that read only text.
        let text = r["content"]?.arrayValue?.first?["text"]?.stringValue ?? ""
        #expect(try JSONParser.parse(text).semanticallyEquals(structured), "\(text) vs \(structured.text)")
        return structured
    }

    /// A tool error's text; fails when the tool succeeded.
    func toolError(_ name: String, _ args: JSON) throws -> String {
        let r = try request("tools/call", ["name": .string(name), "arguments": args])
        guard r["isError"] == true, let text = r["content"]?.arrayValue?.first?["text"]?.stringValue else {
            throw DaemonError("\(name) was expected to fail: \(r.text)")
        }
        return text
    }

    /// Sends a request and returns the whole reply line.
    func send(_ method: String, _ params: JSON) throws -> JSON {
        let id = nextID
        nextID += 1
        write(["jsonrpc": "2.0", "id": .int(id), "method": .string(method), "params": params])
        while true {
            guard let line = readLine(timeoutMs: 15_000) else { throw DaemonError("no reply to \(method) within 15 s") }
            let message = try JSONParser.parse(line)
            if message["id"] == .int(id) { return message }
        }
    }

    /// Writes `text` as one line, as it is, and returns the next line the bridge writes.
    func raw(_ text: String) throws -> JSON {
        input.fileHandleForWriting.write(Data(Array(text.utf8) + [0x0A]))
        guard let line = readLine(timeoutMs: 15_000) else { throw DaemonError("no reply to a raw line within 15 s") }
        return try JSONParser.parse(line)
    }

    /// Every stdout line was a JSON-RPC 2.0 message.
    func expectOnlyProtocolOnStdout() throws {
        #expect(!lines.isEmpty)
        for line in lines {
            let message = try? JSONParser.parse(line)
            #expect(message?["jsonrpc"] == "2.0", "not an MCP message on stdout: \(line)")
        }
    }

    private func write(_ message: JSON) {
        input.fileHandleForWriting.write(Data(message.bytes + [0x0A]))
    }

    private func readLine(timeoutMs: Int32) -> String? {
        guard let bytes = nextLine(fd: output.fileHandleForReading.fileDescriptor, buffer: &buffer, timeoutMs: timeoutMs) else {
            return nil
        }
        let line = String(decoding: bytes, as: UTF8.self)
        lines.append(line)
        return line
    }
}
