import ArgumentParser
import Foundation
import Logging
import MCP
import MnemoClient
import MnemoProtocol
import Synchronization

/// `mnemo mcp`: an MCP server on stdio that forwards to mnemod. stdout carries nothing but
/// MCP messages; diagnostics go to stderr.
struct MCPBridge: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mcp",
        abstract: "Serve Mnemo to an MCP host over stdio (remember, recall, scratchpad, claims, inbox).",
        discussion: """
            The agent identity is --agent or $MNEMO_AGENT (default mcp-agent), its token --token or \
            $MNEMO_TOKEN, and the \
            namespace tools use when a call names none is --ns or $MNEMO_NAMESPACE. The connection to \
            mnemod is opened on the first tool call and reopened after it drops.
            """)

    @OptionGroup var global: GlobalOptions

    @Option(name: .long, help: "Default namespace of every tool (default: $MNEMO_NAMESPACE; else each call must give ns).")
    var ns: String?

    @Flag(name: .long, help: """
        Serve the official MCP memory server's tools (create_entities, add_observations, read_graph, ...) \
        instead, on a knowledge graph in namespace --ns (default mcp/memory) that any number of bridges share \
        without losing writes. Import that server's file with: mnemo import --from mcp-memory FILE.
        """)
    var memoryServerCompat = false

    func run() async throws {
        let env = ProcessInfo.processInfo.environment
        let upstream = Upstream(socketPath: global.socket ?? SocketPath.fromEnvironment(),
                                agent: global.agent ?? env["MNEMO_AGENT"] ?? "mcp-agent",
                                token: global.token ?? env["MNEMO_TOKEN"])
        let defaultNamespace = ns ?? env["MNEMO_NAMESPACE"] ?? (memoryServerCompat ? "mcp/memory" : nil)
        let tools = memoryServerCompat ? BridgeTool.memoryServer : BridgeTool.all
        var stderrLogger = Logger(label: "mnemo-mcp") { StreamLogHandler.standardError(label: $0) }
        stderrLogger.logLevel = .warning
        let server = Server(
            name: memoryServerCompat ? "memory" : "mnemo", version: "0.1.0",
            instructions: memoryServerCompat
                ? "A knowledge graph of entities, observations and relations, shared by every process that uses it."
                : "Shared memory for agents: episodic (what happened), semantic (facts), a scratchpad, task claims and an inbox.",
            capabilities: .init(tools: .init(listChanged: false)))
        await server.withMethodHandler(ListTools.self) { _ in
            .init(tools: tools.map(\.mcpTool))
        }
        await server.withMethodHandler(CallTool.self) { params in
            guard let tool = tools.first(where: { $0.name == params.name }) else {
                throw MCPError.invalidParams("unknown tool \(params.name); tools/list names them")
            }
            return tool.call(params.arguments ?? [:], defaultNamespace: defaultNamespace, upstream: upstream)
        }
        try await server.start(transport: CheckedTransport(logger: stderrLogger))
        await server.waitUntilCompleted()
    }
}

/// The connection to mnemod: opened on first use, dropped after a broken connection and
/// reopened by the next call (a call whose connection broke is not retried: it may have
/// been applied).
final class Upstream: Sendable {
    private let client = Mutex<MnemoClient?>(nil)
    let socketPath: String
    let agent: String
    let token: String?

    init(socketPath: String, agent: String, token: String?) {
        self.socketPath = socketPath
        self.agent = agent
        self.token = token
    }

    func call(_ method: String, _ params: JSON) throws(ClientError) -> JSON {
        let c = try client.withLock { c throws(ClientError) -> MnemoClient in
            if let c { return c }
            let made = try MnemoClient(socketPath: socketPath, agent: agent, token: token, client: "mnemo-mcp")
            c = made
            return made
        }
        do {
            return try c.call(method, params)
        } catch {
            if case .server = error {} else { client.withLock { if $0 === c { $0 = nil } } }
            throw error
        }
    }
}

extension BridgeTool {
    /// The MCP description of this tool.
    var mcpTool: Tool {
        var properties: [String: Value] = [:]
        for a in arguments {
            var schema: [String: Value] = ["description": .string(a.description)]
            if !a.type.isEmpty { schema["type"] = .string(a.type) }
            properties[a.name] = .object(schema)
        }
        return Tool(
            name: name, description: description,
            inputSchema: .object([
                "type": "object",
                "properties": .object(properties),
                "required": .array(arguments.filter(\.required).map { .string($0.name) }),
                "additionalProperties": false,
            ]),
            annotations: .init(readOnlyHint: readOnly))
    }

    /// Runs the tool. Failures are tool results with `isError` (the model reads them and
    /// can correct itself), never protocol errors: an unknown or missing argument, a
    /// missing namespace, mnemod's error (its code and message), an unreachable mnemod.
    func call(_ raw: [String: MCP.Value], defaultNamespace: String?, upstream: Upstream) -> CallTool.Result {
        let declared = Swift.Set(arguments.map(\.name))
        if let unknown = raw.keys.sorted().first(where: { !declared.contains($0) }) {
            return .failure("unknown argument \(unknown) for \(name); it takes: \(arguments.map(\.name).joined(separator: ", "))")
        }
        if let missing = arguments.first(where: { $0.required && raw[$0.name] == nil }) {
            return .failure("missing argument \(missing.name) for \(name)")
        }
        guard let ns = raw["ns"]?.stringValue ?? defaultNamespace else {
            return .failure("no namespace: pass ns, or start the bridge with --ns or $MNEMO_NAMESPACE")
        }
        let args = raw.keys.sorted().filter { $0 != "ns" }.map { JSONMember($0, JSON(mcp: raw[$0]!)) }
        do {
            let result = try run(args, ns) { method, params in try upstream.call(method, params) }
            // MCP's structured content is an object; an array or a message goes as text only.
            let structured: MCP.Value? = if case .object = result { MCP.Value(mnemo: result) } else { nil }
            return .init(content: [.text(text: result.text, annotations: nil, _meta: nil)],
                         structuredContent: structured, isError: false)
        } catch let ClientError.server(e) {
            return .failure(e.description)
        } catch {
            return .failure("\(error)")
        }
    }
}

extension CallTool.Result {
    static func failure(_ message: String) -> Self {
        .init(content: [.text(text: message, annotations: nil, _meta: nil)], isError: true)
    }
}

extension JSON {
    /// The same value as MCP's `Value` (binary data becomes a base64 string).
    init(mcp v: MCP.Value) {
        switch v {
        case .null: self = .null
        case .bool(let b): self = .bool(b)
        case .int(let i): self = .int(Int64(i))
        case .double(let d): self = d.isFinite ? .number("\(d)") : .null
        case .string(let s): self = .string(s)
        case .data(_, let d): self = .string(d.base64EncodedString())
        case .array(let a): self = .array(a.map { JSON(mcp: $0) })
        case .object(let o): self = .object(o.keys.sorted().map { JSONMember($0, JSON(mcp: o[$0]!)) })
        }
    }
}

extension Value {
    /// The same value as MnemoProtocol's `JSON` (integers stay integers).
    init(mnemo json: JSON) {
        switch json {
        case .null: self = .null
        case .bool(let b): self = .bool(b)
        case .number(let text):
            if let i = Int(text) { self = .int(i) } else { self = .double(Double(text) ?? 0) }
        case .string(let s): self = .string(s)
        case .array(let a): self = .array(a.map { MCP.Value(mnemo: $0) })
        case .object(let m): self = .object(Dictionary(m.map { ($0.key, MCP.Value(mnemo: $0.value)) }, uniquingKeysWith: { $1 }))
        }
    }
}
