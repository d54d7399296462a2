import Foundation

/// The measured outcome of a run.
struct RunResult: Codable {
    var workload: String
    var system: String
    var clients: Int
    var operations: Int
    var seconds: Double
    var opsPerSecond: Double
    var p50: Double
    var p90: Double
    var p99: Double
    var p999: Double
    var max: Double
}

/// Connections to each system measured.
enum Connect {
    /// A mnemod connection that said hello; `lines` are JSON-RPC requests with id 1.
    static func mnemo(_ path: String, agent: String, lines: [[UInt8]]) throws -> MuxConnection {
        let socket = try BenchSocket(path: path)
        try socket.send(Array("{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"session.hello\",\"params\":{\"agent\":\"\(agent)\"}}\n".utf8))
        _ = try socket.readLine()
        return MuxConnection(socket: socket, requests: lines, framing: .line) { reply in
            // A result starts `{"jsonrpc":"2.0","id":1,"result":`; an error has "error" there.
            reply.count > 33 && reply[25] == UInt8(ascii: "r") ? nil
                : "unexpected reply: \(String(decoding: reply.prefix(200), as: UTF8.self))"
        }
    }

    /// A Redis connection sending RESP `commands`.
    static func redis(_ path: String, commands: [[String]]) throws -> MuxConnection {
        MuxConnection(socket: try BenchSocket(path: path), requests: commands.map(resp), framing: .resp) { reply in
            reply.first == UInt8(ascii: "-") ? "redis error: \(String(decoding: reply, as: UTF8.self))" : nil
        }
    }

    /// A connection to the raw echo server.
    static func echo(_ path: String, line: [UInt8]) throws -> MuxConnection {
        MuxConnection(socket: try BenchSocket(path: path), requests: [line], framing: .line)
    }

    static func resp(_ parts: [String]) -> [UInt8] {
        var s = "*\(parts.count)\r\n"
        for p in parts { s += "$\(p.utf8.count)\r\n\(p)\r\n" }
        return Array(s.utf8)
    }
}
