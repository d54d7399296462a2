import Foundation
import Histogram
#if canImport(Glibc)
import Glibc
#endif

/// How a reply ends, for a client that reads replies out of a byte stream.
enum ReplyFraming {
    /// One `\n`-terminated line (JSON-RPC, the echo).
    case line
    /// One RESP reply (simple string, error, integer or bulk string).
    case resp

    /// Length of the first complete reply in `bytes`, or nil if incomplete.
    func complete(_ bytes: UnsafeRawBufferPointer) -> Int? {
        guard let base = bytes.baseAddress, bytes.count > 0,
            let nl = memchr(base, 0x0A, bytes.count)
        else { return nil }
        let lineEnd = base.distance(to: UnsafeRawPointer(nl)) + 1
        switch self {
        case .line:
            return lineEnd
        case .resp:
            guard bytes[0] == UInt8(ascii: "$") else { return lineEnd }
            var len = 0
            var i = 1
            var negative = false
            if bytes[1] == UInt8(ascii: "-") { negative = true; i = 2 }
            while i < lineEnd - 2 { len = len * 10 + Int(bytes[i] - 48); i += 1 }
            if negative { return lineEnd }
            return lineEnd + len + 2 <= bytes.count ? lineEnd + len + 2 : nil
        }
    }
}

/// One connection of the multiplexed client.
final class MuxConnection {
    let socket: BenchSocket
    let requests: [[UInt8]]
    let framing: ReplyFraming
    /// Rejects a wrong reply (e.g. a JSON-RPC error) with a message.
    let check: (UnsafeRawBufferPointer) -> String?
    var buffer: [UInt8] = []
    var sentAt: UInt64 = 0
    var done = 0

    init(socket: BenchSocket, requests: [[UInt8]], framing: ReplyFraming, check: @escaping (UnsafeRawBufferPointer) -> String? = { _ in nil }) {
        self.socket = socket
        self.requests = requests
        self.framing = framing
        self.check = check
    }
}

/// Connections driven by one client thread (handed to that thread once; never shared).
private final class Group: @unchecked Sendable {
    let conns: [MuxConnection]
    var hist = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000_000,
                                 numberOfSignificantValueDigits: .three)
    var windowOps = 0
    var seconds = 0.0
    var failure: String?
    init(_ conns: [MuxConnection]) { self.conns = conns }
}

/// Drives `clients` connections, one request in flight per connection, from `threads`
/// client threads, each polling its share: 1 thread is redis-benchmark's way (the
/// client's own cost stays small); one thread per connection is 32 separate agents.
/// Throughput is the sum of the threads' steady-state rates (every connection past its
/// warm-up, none finished).
func measureMultiplexed(workload: String, system: String, clients: Int, perClient: Int, warmup: Int, threads: Int = 1,
                        connect: (Int) throws -> MuxConnection) throws -> RunResult {
    let conns = try (0..<clients).map(connect)
    let n = max(1, min(threads, clients))
    let groups = (0..<n).map { g in Group(stride(from: g, to: clients, by: n).map { conns[$0] }) }
    let done = DispatchGroup()
    for group in groups {
        done.enter()
        Thread.detachNewThread {
            do {
                try drive(group, perClient: perClient, warmup: warmup)
            } catch {
                group.failure = "\(error)"
            }
            done.leave()
        }
    }
    done.wait()
    if let f = groups.compactMap(\.failure).first { throw BenchError("\(system): \(f)") }
    var hist = groups[0].hist
    for g in groups.dropFirst() { hist.add(g.hist) }
    let rate = groups.reduce(0.0) { $0 + Double($1.windowOps) / max($1.seconds, 1e-9) }
    let us = { (v: UInt64) in Double(v) / 1000 }
    return RunResult(workload: workload, system: system, clients: clients, operations: Int(hist.totalCount),
                     seconds: groups.map(\.seconds).max() ?? 0, opsPerSecond: rate,
                     p50: us(hist.valueAtPercentile(50)), p90: us(hist.valueAtPercentile(90)),
                     p99: us(hist.valueAtPercentile(99)), p999: us(hist.valueAtPercentile(99.9)), max: us(hist.max))
}

private func drive(_ group: Group, perClient: Int, warmup: Int) throws {
    let conns = group.conns
    let clients = conns.count
    var fds = conns.map { pollfd(fd: $0.socket.fd, events: Int16(POLLIN), revents: 0) }
    let total = perClient + warmup
    var chunk = [UInt8](repeating: 0, count: 65536)
    var t0: UInt64 = 0
    var tEnd: UInt64 = 0
    var measuring = false
    var windowOps = 0
    func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
    for c in conns {
        c.sentAt = now()
        try c.socket.send(c.requests[0])
    }
    var finished = 0
    while finished < clients {
        guard poll(&fds, nfds_t(fds.count), 10_000) > 0 else { throw BenchError("no reply within 10 s") }
        for (i, c) in conns.enumerated() where fds[i].revents != 0 {
            let n = chunk.withUnsafeMutableBytes { read(c.socket.fd, $0.baseAddress, $0.count) }
            guard n > 0 else { throw BenchError("connection closed") }
            c.buffer.append(contentsOf: chunk[0..<n])
            while let len = c.buffer.withUnsafeBytes({ c.framing.complete($0) }) {
                if let problem = c.buffer.withUnsafeBytes({ c.check(UnsafeRawBufferPointer(rebasing: $0[0..<len])) }) {
                    throw BenchError(problem)
                }
                c.buffer.removeSubrange(0..<len)
                let t = now()
                if c.done >= warmup { _ = group.hist.record(t - c.sentAt) }
                if measuring && finished == 0 { windowOps += 1 }
                c.done += 1
                if !measuring && conns.allSatisfy({ $0.done >= warmup }) {
                    measuring = true
                    t0 = t
                }
                if c.done == total {
                    if finished == 0 { tEnd = t }
                    finished += 1
                    fds[i].events = 0
                } else {
                    c.sentAt = now()
                    try c.socket.send(c.requests[c.done % c.requests.count])
                }
            }
        }
    }
    group.windowOps = windowOps
    group.seconds = Double(tEnd - t0) / 1e9
}
