import Foundation
import Histogram

/// One client thread of ``measureThreads``: its operation and what it measured.
private final class Worker: @unchecked Sendable {
    // @unchecked: handed to exactly one thread, read by the caller after that thread finished.
    let op: (Int) throws -> Void
    var hist = Histogram<UInt64>.bench()
    var seconds = 0.0
    /// When this thread's measured calls began and ended (after its warm-up).
    var measuredFrom: UInt64 = 0
    var measuredTo: UInt64 = 0
    var failure: String?
    init(_ op: @escaping (Int) throws -> Void) { self.op = op }
}

/// Runs `clients` threads, each calling its operation `warmup + perClient` times one after
/// another (the operation gets the call's index), for peers used in-process or through a
/// blocking client (SQLite, BLAS, an agent step made of Redis + SQLite + BLAS calls).
/// Latency is per call; throughput is every measured call over the span from the first
/// thread's end of warm-up to the last thread's last call (threads that take turns on a
/// lock, like SQLite writers, are not counted as running in parallel).
func measureThreads(workload: String, system: String, role: String = "peer", clients: Int, n: Int? = nil,
                    note: String? = nil, perClient: Int, warmup: Int,
                    makeOp: (Int) throws -> (Int) throws -> Void) throws -> RunResult {
    let workers = try (0..<clients).map { Worker(try makeOp($0)) }
    let start = DispatchSemaphore(value: 0)
    let done = DispatchGroup()
    for w in workers {
        done.enter()
        Thread.detachNewThread {
            start.wait()
            do {
                for i in 0..<warmup { try w.op(i) }
                let t0 = DispatchTime.now().uptimeNanoseconds
                var last = t0
                for i in warmup..<(warmup + perClient) {
                    try w.op(i)
                    let t = DispatchTime.now().uptimeNanoseconds
                    _ = w.hist.record(max(t - last, 1))
                    last = t
                }
                w.seconds = Double(last - t0) / 1e9
                w.measuredFrom = t0
                w.measuredTo = last
            } catch {
                w.failure = "\(error)"
            }
            done.leave()
        }
    }
    for _ in workers { start.signal() }
    done.wait()
    if let f = workers.compactMap(\.failure).first { throw BenchError("\(workload), \(system): \(f)") }
    var hist = workers[0].hist
    for w in workers.dropFirst() { hist.add(w.hist) }
    let span = Double((workers.map(\.measuredTo).max() ?? 0) - (workers.map(\.measuredFrom).min() ?? 0)) / 1e9
    let rate = Double(perClient * clients) / max(span, 1e-9)
    return RunResult(workload: workload, system: system, role: role, clients: clients, n: n, note: note, hist: hist,
                     seconds: workers.map(\.seconds).max() ?? 0, opsPerSecond: rate)
}
