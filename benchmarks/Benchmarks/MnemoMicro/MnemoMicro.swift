import Benchmark
import Foundation
import Logging
import MnemoCore
import MnemoProtocol
import MnemoServer

// Hot paths in-process (no socket), with package-benchmark: wall time and malloc counts
// per operation (its malloc interposer counts every allocation). Run from benchmarks/:
//
//     swift package --disable-sandbox benchmark --target MnemoMicro --no-progress
//
// Figures marked * are per operation (the benchmark loops `scalingFactor` times per sample).
//
// TopK (MnemoCore/Semantic) is internal, so top-k is measured through
// SemanticStore.search on an in-memory collection: k = 10 and k = 1000 over the same
// scan, whose difference is the top-k selection.

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .mallocCountTotal, .throughput],
        warmupIterations: 100, scalingFactor: .kilo, maxDuration: .seconds(3), maxIterations: 1_000)

    func line(_ s: String) -> [UInt8] { Array(s.utf8) }
    let value = String(repeating: "v", count: 100)
    let getLine = line(#"{"jsonrpc":"2.0","id":1,"method":"wm.get","params":{"ns":"bench","key":"k1"}}"#)
    let setLine = line(#"{"jsonrpc":"2.0","id":1,"method":"wm.set","params":{"ns":"bench","key":"k1","value":"\#(value)"}}"#)

    // Frame decode: bytes from the socket split into a line and decoded into a request.
    for (name, bytes) in [("wm.get", getLine), ("wm.set", setLine)] {
        let framed = bytes + [0x0A]
        Benchmark("frame decode: \(name) line") { b in
            var buffer = LineBuffer()
            for _ in b.scaledIterations {
                framed.withUnsafeBytes { buffer.append($0) }
                guard case .line(let r)? = buffer.next(maxLine: 1 << 20) else { fatalError("no line") }
                let decoded = buffer.storage.withUnsafeBufferPointer {
                    RPC.decode(line: UnsafeBufferPointer(rebasing: $0[r]), maxDepth: 64, maxBatch: 1000)
                }
                blackHole(decoded)
                buffer.compact()
            }
        }
    }

    // Whole requests through the dispatcher (decode, dispatch, store, reply).
    let engine = try! Engine(limits: Limits(), durability: .volatile, dataDir: "/nonexistent", logger: Logger(label: "micro"))
    let conn = InProcessConnection(engine: engine)
    _ = conn.handle(line(#"{"jsonrpc":"2.0","id":0,"method":"session.hello","params":{"agent":"micro"}}"#))
    _ = conn.handle(setLine)
    Benchmark("request: wm.get") { b in
        for _ in b.scaledIterations { blackHole(conn.handle(getLine)) }
    }
    Benchmark("request: wm.set") { b in
        for _ in b.scaledIterations { blackHole(conn.handle(setLine)) }
    }

    // Top-k: exact search over 2000 unit vectors (d = 384), k = 10 and k = 1000.
    let revisions = Revisions()
    let caller = Caller(agent: "micro", principal: "local", uid: 0, gid: 0, pid: 0)
    let sem = try! SemanticStore(dir: "/nonexistent", durability: .volatile, limits: Limits(), time: SystemTime(),
                                 embedder: HashEmbedder(), logger: Logger(label: "micro"), nextRevision: { [revisions] in revisions.next() })
    var rng = SystemRandomNumberGenerator()
    func unit() -> [Float] {
        var v = (0..<384).map { _ in Float.random(in: -1...1, using: &rng) }
        let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
        for i in v.indices { v[i] /= norm }
        return v
    }
    for i in 0..<2000 {
        var u = SemanticStore.Upsert(ns: "bench/vectors", text: "fact \(i)")
        u.id = "v\(i)"
        u.vector = unit()
        _ = try! sem.upsert(u, by: caller)
    }
    let query = unit()
    for k in [10, 1000] {
        Benchmark("top-k: sem.search k=\(k) over 2000 vectors", configuration: .init(scalingFactor: .one)) { b in
            for _ in b.scaledIterations {
                blackHole(try! sem.search(SemanticStore.Query(prefix: "bench/vectors", vector: query, text: nil, k: k)))
            }
        }
    }

    // Expiry sweep: 100k keys with a TTL, all due; each sample is one sweep of at most
    // 1000 (the background sweeper's batch), 90 samples, so every sweep removes 1000.
    let time = ManualTime()
    let wm = WorkingMemory(limits: Limits(), time: time)
    let v = Array("\"\(value)\"".utf8)
    for i in 0..<100_000 {
        _ = try! wm.set(WorkingMemory.Write(ns: "bench", key: "k\(i)", value: v, ttlMs: 1000), by: caller)
    }
    time.advance(ms: 2000)
    Benchmark("expiry sweep: 1000 due keys of 100k",
              configuration: .init(warmupIterations: 0, scalingFactor: .one, maxDuration: .seconds(10), maxIterations: 90)) { b in
        for _ in b.scaledIterations { blackHole(wm.sweepExpired(max: 1000)) }
    }
}

/// Revisions for the semantic store outside an engine.
final class Revisions: @unchecked Sendable {
    // @unchecked: `last` is only touched under `lock`.
    private let lock = NSLock()
    private var last: Int64 = 0
    func next() -> Int64 { lock.lock(); defer { lock.unlock() }; last += 1; return last }
}
