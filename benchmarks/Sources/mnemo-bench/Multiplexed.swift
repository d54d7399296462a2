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

/// Drives `clients` connections from one thread with `poll`, one outstanding request per
/// connection (as redis-benchmark does), so that the client's own cost stays small and
/// the same for every system measured.
func measureMultiplexed(workload: String, system: String, clients: Int, perClient: Int, warmup: Int,
                        connect: (Int) throws -> MuxConnection) throws -> RunResult {
    var hist = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000_000,
                                 numberOfSignificantValueDigits: .three)
    let conns = try (0..<clients).map(connect)
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
        guard poll(&fds, nfds_t(fds.count), 10_000) > 0 else { throw BenchError("\(system): no reply within 10 s") }
        for (i, c) in conns.enumerated() where fds[i].revents != 0 {
            let n = chunk.withUnsafeMutableBytes { read(c.socket.fd, $0.baseAddress, $0.count) }
            guard n > 0 else { throw BenchError("\(system): connection closed") }
            c.buffer.append(contentsOf: chunk[0..<n])
            while let len = c.buffer.withUnsafeBytes({ c.framing.complete($0) }) {
                if let problem = c.buffer.withUnsafeBytes({ c.check(UnsafeRawBufferPointer(rebasing: $0[0..<len])) }) {
                    throw BenchError("\(system): \(problem)")
                }
                c.buffer.removeSubrange(0..<len)
                let t = now()
                if c.done >= warmup { _ = hist.record(t - c.sentAt) }
                // Throughput is taken while every connection is past its warm-up and none
                // has finished: the steady state with all clients active.
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
    let seconds = Double(tEnd - t0) / 1e9
    let us = { (v: UInt64) in Double(v) / 1000 }
    return RunResult(workload: workload, system: system, clients: clients, operations: Int(hist.totalCount), seconds: seconds,
                     opsPerSecond: Double(windowOps) / seconds, p50: us(hist.valueAtPercentile(50)), p90: us(hist.valueAtPercentile(90)),
                     p99: us(hist.valueAtPercentile(99)), p999: us(hist.valueAtPercentile(99.9)), max: us(hist.max))
}
