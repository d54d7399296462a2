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
    /// The request with this index (0, 1, ...): given the reply to the previous request
    /// of the connection, so a script can use what the server answered (a claim's token).
    let request: (_ index: Int, _ previousReply: UnsafeRawBufferPointer) -> [UInt8]
    /// Requests per measured step: a latency sample covers the whole step (e.g. 2 for
    /// acquire + release, 6 for an agent step), sent one after another.
    let stepLength: Int
    let framing: ReplyFraming
    /// Rejects a wrong reply (e.g. a JSON-RPC error) with a message.
    let check: (UnsafeRawBufferPointer) -> String?
    var buffer: [UInt8] = []
    var sentAt: UInt64 = 0
    /// Steps completed.
    var done = 0
    /// Requests sent.
    var sent = 0

    init(socket: BenchSocket, stepLength: Int = 1, framing: ReplyFraming,
         check: @escaping (UnsafeRawBufferPointer) -> String? = { _ in nil },
         request: @escaping (Int, UnsafeRawBufferPointer) -> [UInt8]) {
        self.socket = socket
        self.request = request
        self.stepLength = stepLength
        self.framing = framing
        self.check = check
    }

    /// A connection cycling through fixed requests.
    convenience init(socket: BenchSocket, requests: [[UInt8]], framing: ReplyFraming,
                     check: @escaping (UnsafeRawBufferPointer) -> String? = { _ in nil }) {
        self.init(socket: socket, framing: framing, check: check) { i, _ in requests[i % requests.count] }
    }

    func sendNext(previous: UnsafeRawBufferPointer) throws {
        let bytes = request(sent, previous)
        sent += 1
        try socket.send(bytes)
    }
}

/// Connections driven by one client thread (handed to that thread once; never shared).
private final class Group: @unchecked Sendable {
    let conns: [MuxConnection]
    var hist = Histogram<UInt64>.bench()
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
func measureMultiplexed(workload: String, system: String, role: String = "mnemo", clients: Int, n: Int? = nil,
                        note: String? = nil, perClient: Int, warmup: Int, threads: Int = 1,
                        connect: (Int) throws -> MuxConnection) throws -> RunResult {
    let conns = try (0..<clients).map(connect)
    let n0 = max(1, min(threads, clients))
    let groups = (0..<n0).map { g in Group(stride(from: g, to: clients, by: n0).map { conns[$0] }) }
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
    if let f = groups.compactMap(\.failure).first { throw BenchError("\(workload), \(system): \(f)") }
    var hist = groups[0].hist
    for g in groups.dropFirst() { hist.add(g.hist) }
    let rate = groups.reduce(0.0) { $0 + Double($1.windowOps) / max($1.seconds, 1e-9) }
    return RunResult(workload: workload, system: system, role: role, clients: clients, n: n, note: note, hist: hist,
                     seconds: groups.map(\.seconds).max() ?? 0, opsPerSecond: rate)
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
        try c.sendNext(previous: UnsafeRawBufferPointer(start: nil, count: 0))
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
                if c.sent % c.stepLength != 0 {
                    // Inside a step: the next request of the step, given this reply.
                    try c.buffer.withUnsafeBytes { try c.sendNext(previous: UnsafeRawBufferPointer(rebasing: $0[0..<len])) }
                    c.buffer.removeSubrange(0..<len)
                    continue
                }
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
                    c.buffer.removeSubrange(0..<len)
                } else {
                    c.sentAt = now()
                    try c.buffer.withUnsafeBytes { try c.sendNext(previous: UnsafeRawBufferPointer(rebasing: $0[0..<len])) }
                    c.buffer.removeSubrange(0..<len)
                }
            }
        }
    }
    group.windowOps = windowOps
    group.seconds = Double(tEnd - t0) / 1e9
}
