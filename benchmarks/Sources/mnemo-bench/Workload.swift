import Foundation
import Histogram
import Synchronization

/// One request/reply exchange on a connection: what a client does per operation.
protocol Exchange {
    /// Sends one request and waits for its reply.
    mutating func roundTrip(_ i: Int) throws
}

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

/// Runs `clients` connections, each doing `warmup` then `perClient` exchanges, one
/// outstanding request per connection; latencies in microseconds.
func measure(workload: String, system: String, clients: Int, perClient: Int, warmup: Int,
             connect: @escaping @Sendable (Int) throws -> any Exchange) throws -> RunResult {
    let merged = Mutex(Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000_000,
                                         numberOfSignificantValueDigits: .three))
    let failures = Mutex<[String]>([])
    let ready = DispatchGroup()
    let startGate = DispatchSemaphore(value: 0)
    let done = DispatchGroup()
    for c in 0..<clients {
        ready.enter()
        done.enter()
        Thread.detachNewThread {
            defer { done.leave() }
            var local = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000_000,
                                          numberOfSignificantValueDigits: .three)
            var exchange: any Exchange
            do {
                exchange = try connect(c)
                for i in 0..<warmup { try exchange.roundTrip(i) }
            } catch {
                failures.withLock { $0.append("\(error)") }
                ready.leave()
                return
            }
            ready.leave()
            startGate.wait()
            do {
                for i in 0..<perClient {
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    try exchange.roundTrip(warmup + i)
                    _ = local.record(DispatchTime.now().uptimeNanoseconds - t0)
                }
            } catch {
                failures.withLock { $0.append("\(error)") }
            }
            merged.withLock { $0.add(local) }
        }
    }
    ready.wait()
    let t0 = DispatchTime.now().uptimeNanoseconds
    for _ in 0..<clients { startGate.signal() }
    done.wait()
    let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
    if let f = failures.withLock({ $0.first }) { throw BenchError("\(system) \(workload): \(f)") }
    let h = merged.withLock { $0 }
    let us = { (v: UInt64) in Double(v) / 1000 }
    let ops = clients * perClient
    return RunResult(workload: workload, system: system, clients: clients, operations: ops, seconds: seconds,
                     opsPerSecond: Double(ops) / seconds, p50: us(h.valueAtPercentile(50)), p90: us(h.valueAtPercentile(90)),
                     p99: us(h.valueAtPercentile(99)), p999: us(h.valueAtPercentile(99.9)), max: us(h.max))
}

/// JSON-RPC over the socket: `wm.get` / `wm.set` lines; checks each reply is a result.
struct MnemoExchange: Exchange {
    let socket: BenchSocket
    let requests: [[UInt8]]

    init(path: String, agent: String, requests: [[UInt8]]) throws {
        socket = try BenchSocket(path: path)
        try socket.send(Array("{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"session.hello\",\"params\":{\"agent\":\"\(agent)\"}}\n".utf8))
        _ = try socket.readLine()
        self.requests = requests
    }

    mutating func roundTrip(_ i: Int) throws {
        try socket.send(requests[i % requests.count])
        let line = try socket.readLine()
        // Requests use id 1, so a result starts `{"jsonrpc":"2.0","id":1,"result":`; an
        // error has "error" at the same place.
        guard line.count > 33, line[line.startIndex + 24] == UInt8(ascii: "\""), line[line.startIndex + 25] == UInt8(ascii: "r") else {
            throw BenchError("unexpected reply: \(String(decoding: line.prefix(200), as: UTF8.self))")
        }
    }
}

/// Raw lines echoed back: the round-trip floor.
struct EchoExchange: Exchange {
    let socket: BenchSocket
    let line: [UInt8]

    mutating func roundTrip(_ i: Int) throws {
        try socket.send(line)
        _ = try socket.readLine()
    }
}

/// RESP commands to Redis.
struct RedisExchange: Exchange {
    let socket: BenchSocket
    let commands: [[UInt8]]

    mutating func roundTrip(_ i: Int) throws {
        try socket.send(commands[i % commands.count])
        _ = try socket.readRESP()
    }

    static func command(_ parts: [String]) -> [UInt8] {
        var s = "*\(parts.count)\r\n"
        for p in parts { s += "$\(p.utf8.count)\r\n\(p)\r\n" }
        return Array(s.utf8)
    }
}
