import Foundation
import Histogram

/// The measured outcome of a run: one (workload, system, clients, data size).
struct RunResult: Codable {
    var workload: String
    var system: String
    var clients: Int
    var operations: Int
    var seconds: Double
    /// Operations (steps; queries for a batch) per second, steady state.
    var opsPerSecond: Double
    var p50: Double
    var p90: Double
    var p99: Double
    var p999: Double
    var max: Double
    /// Data size the workload ran against (keys, records, vectors); nil: not applicable.
    var n: Int?
    /// `mnemo`, `peer` or `floor` (the raw echo); nil in runs written before roles existed
    /// (then a system named `mnemo...` is mnemod, `echo` the floor, anything else a peer).
    var role: String?
    /// How the peer did it, when the name alone does not say.
    var note: String?

    var isMnemo: Bool { role.map { $0 == "mnemo" } ?? system.hasPrefix("mnemo") }
    var isFloor: Bool { role.map { $0 == "floor" } ?? (system == "echo") }

    /// Percentiles of `hist` (nanoseconds) in microseconds.
    init(workload: String, system: String, role: String, clients: Int, n: Int? = nil, note: String? = nil,
         hist: Histogram<UInt64>, seconds: Double, opsPerSecond: Double) {
        let us = { (v: UInt64) in Double(v) / 1000 }
        self.workload = workload
        self.system = system
        self.role = role
        self.clients = clients
        self.n = n
        self.note = note
        operations = Int(hist.totalCount)
        self.seconds = seconds
        self.opsPerSecond = opsPerSecond
        p50 = us(hist.valueAtPercentile(50))
        p90 = us(hist.valueAtPercentile(90))
        p99 = us(hist.valueAtPercentile(99))
        p999 = us(hist.valueAtPercentile(99.9))
        max = us(hist.max)
    }

    /// The same fields from latencies measured elsewhere (e.g. by a Python peer), in ns.
    init(workload: String, system: String, role: String, clients: Int, n: Int?, note: String? = nil,
         samplesNs: [UInt64], opsPerSample: Int = 1) {
        var hist = Histogram<UInt64>.bench()
        for s in samplesNs { _ = hist.record(Swift.max(s, 1)) }
        let total = samplesNs.reduce(0.0) { $0 + Double($1) } / 1e9
        self.init(workload: workload, system: system, role: role, clients: clients, n: n, note: note, hist: hist,
                  seconds: total, opsPerSecond: total > 0 ? Double(samplesNs.count * opsPerSample) / total : 0)
    }
}

extension Histogram where Count == UInt64 {
    /// Nanoseconds, 1 ns to 60 s, three significant digits.
    static func bench() -> Histogram<UInt64> {
        Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
    }
}

/// Resident memory of a server next to what it holds.
struct MemoryResult: Codable {
    /// `working keys`, `384-d vectors`.
    var what: String
    var system: String
    /// Items loaded.
    var n: Int
    /// Resident set before loading (the empty server) and after.
    var rssBeforeBytes: Int
    var rssAfterBytes: Int
    /// What the server reports for its data (Redis `used_memory` after minus before), or
    /// the size of the database file holding it.
    var reportedBytes: Int?
    /// What `reportedBytes` is (`used_memory`, `database file`).
    var reportedWhat: String?
    /// The size of the raw data (N x 384 x 4 for vectors).
    var floorBytes: Int?
}

/// Everything one `mnemo-bench` invocation measured.
struct BenchRun: Codable {
    var meta: [String: String]
    var runs: [RunResult]
    var memory: [MemoryResult]
}

/// Connections to each system measured.
enum Connect {
    static func hello(_ agent: String) -> [UInt8] {
        Array("{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"session.hello\",\"params\":{\"agent\":\"\(agent)\"}}\n".utf8)
    }

    /// Accepts a JSON-RPC result (`{"jsonrpc":"2.0","id":1,"result":`), rejects anything else.
    static let mnemoCheck: @Sendable (UnsafeRawBufferPointer) -> String? = { reply in
        reply.count > 33 && reply[25] == UInt8(ascii: "r") ? nil
            : "unexpected reply: \(String(decoding: reply.prefix(300), as: UTF8.self))"
    }

    /// A mnemod connection that said hello; `lines` are JSON-RPC requests with id 1.
    static func mnemo(_ path: String, agent: String, lines: [[UInt8]]) throws -> MuxConnection {
        MuxConnection(socket: try helloSocket(path, agent: agent), requests: lines, framing: .line, check: mnemoCheck)
    }

    /// A mnemod connection running a script: `stepLength` requests per sample, each made
    /// from its index and the previous reply.
    static func mnemo(_ path: String, agent: String, stepLength: Int,
                      request: @escaping (Int, UnsafeRawBufferPointer) -> [UInt8]) throws -> MuxConnection {
        MuxConnection(socket: try helloSocket(path, agent: agent), stepLength: stepLength, framing: .line, check: mnemoCheck,
                      request: request)
    }

    static func helloSocket(_ path: String, agent: String) throws -> BenchSocket {
        let socket = try BenchSocket(path: path)
        try socket.send(hello(agent))
        _ = try socket.readLine()
        return socket
    }

    static let redisCheck: @Sendable (UnsafeRawBufferPointer) -> String? = { reply in
        reply.first == UInt8(ascii: "-") ? "redis error: \(String(decoding: reply, as: UTF8.self))" : nil
    }

    /// A Redis connection sending RESP `commands`.
    static func redis(_ path: String, commands: [[String]]) throws -> MuxConnection {
        MuxConnection(socket: try BenchSocket(path: path), requests: commands.map(resp), framing: .resp, check: redisCheck)
    }

    /// A Redis connection running a script (see ``mnemo(_:agent:stepLength:request:)``).
    static func redis(_ path: String, stepLength: Int, request: @escaping (Int, UnsafeRawBufferPointer) -> [UInt8]) throws
        -> MuxConnection
    {
        MuxConnection(socket: try BenchSocket(path: path), stepLength: stepLength, framing: .resp, check: redisCheck,
                      request: request)
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

    /// A JSON-RPC request line with id 1; `params` is already JSON.
    static func rpc(_ method: String, _ params: String) -> [UInt8] {
        Array("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\(method)\",\"params\":\(params)}\n".utf8)
    }

    /// A JSON string literal.
    static func json(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default:
                if u.value < 0x20 { out += String(format: "\\u%04x", u.value) } else { out.unicodeScalars.append(u) }
            }
        }
        return out + "\""
    }

    /// The integer after `"name":` in a reply (e.g. a claim's token), or nil.
    static func integer(_ name: String, in reply: UnsafeRawBufferPointer) -> Int64? {
        let needle = Array("\"\(name)\":".utf8)
        guard reply.count >= needle.count else { return nil }
        var i = 0
        while i + needle.count <= reply.count {
            var match = true
            for j in 0..<needle.count where reply[i + j] != needle[j] { match = false; break }
            if match {
                var k = i + needle.count
                var v: Int64 = 0
                var any = false
                while k < reply.count, reply[k] >= 48, reply[k] <= 57 { v = v * 10 + Int64(reply[k] - 48); k += 1; any = true }
                return any ? v : nil
            }
            i += 1
        }
        return nil
    }
}
