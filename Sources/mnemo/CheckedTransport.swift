import Foundation
import Logging
import MCP
import MnemoProtocol

/// The MCP bridge's stdio with JSON-RPC 2.0 framing checked before the SDK's server sees a
/// message. The SDK (swift-sdk 0.12.1) answers a line that is not JSON with -32700 under an
/// id it makes up, and an object that is not a valid message with -32700 too; the
/// specification says -32700 with id null, and -32600 (with the request's id when it has a
/// usable one, else null). Those lines are answered here and never reach the SDK; every
/// well-formed message passes through unchanged.
actor CheckedTransport: Transport {
    private let inner: StdioTransport
    nonisolated let logger: Logger

    init(logger: Logger) {
        self.logger = logger
        inner = StdioTransport(logger: logger)
    }

    func connect() async throws { try await inner.connect() }

    func disconnect() async { await inner.disconnect() }

    func send(_ data: Data) async throws { try await inner.send(data) }

    func receive() -> AsyncThrowingStream<Data, any Swift.Error> {
        let inner = self.inner
        return AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    for try await message in await inner.receive() {
                        if let reply = Self.framingError(message) {
                            try await inner.send(reply)
                        } else {
                            continuation.yield(message)
                        }
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    /// The error reply a message gets instead of reaching the server; nil when it is a
    /// well-formed JSON-RPC 2.0 message (request, notification or response) or a non-empty
    /// batch (whose members the SDK answers one by one).
    static func framingError(_ message: Data) -> Data? {
        let json: JSON
        do {
            json = try message.withUnsafeBytes { raw in try JSONParser.parse(raw.bindMemory(to: UInt8.self), maxDepth: 128) }
        } catch {
            return reply(id: .null, code: -32700, "Parse error: not JSON")
        }
        switch json {
        case .array(let items):
            return items.isEmpty ? reply(id: .null, code: -32600, "Invalid Request: an empty batch") : nil
        case .object:
            let id = json["id"]
            let usableID: JSON = switch id {
            case .string?, .number?: id ?? .null
            default: .null
            }
            guard json["jsonrpc"] == .string("2.0") else { return reply(id: usableID, code: -32600, "Invalid Request: jsonrpc must be \"2.0\"") }
            if let method = json["method"] {
                guard method.stringValue != nil else { return reply(id: usableID, code: -32600, "Invalid Request: method must be a string") }
                if let id, usableID == .null, id != .null {
                    return reply(id: .null, code: -32600, "Invalid Request: id must be a string or a number")
                }
                switch json["params"] {
                case nil, .object?, .array?: return nil
                default: return reply(id: usableID, code: -32600, "Invalid Request: params must be an object or an array")
                }
            }
            // Not a request: a response to one of the server's requests.
            guard id != nil, json["result"] != nil || json["error"] != nil else {
                return reply(id: usableID, code: -32600, "Invalid Request: neither a request nor a response")
            }
            return nil
        default:
            return reply(id: .null, code: -32600, "Invalid Request: a message must be a JSON object")
        }
    }

    private static func reply(id: JSON, code: Int, _ message: String) -> Data {
        let error = JSON.object([JSONMember("code", .int(Int64(code))), JSONMember("message", .string(message))])
        return Data(JSON.object([JSONMember("jsonrpc", "2.0"), JSONMember("id", id), JSONMember("error", error)]).bytes)
    }
}
