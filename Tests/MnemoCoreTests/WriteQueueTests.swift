import Dispatch
@testable import MnemoCore
import MnemoProtocol
import Synchronization
import Testing

/// The cluster node's group commit, without PostgreSQL: writes that arrive while a batch
/// is under way run together in the next one, one leader at a time, each answered once
/// with its own outcome, in arrival order within its batch.
@Suite("cluster: group commit queue")
struct WriteQueueTests {
    /// What the leaders saw.
    final class Probe: Sendable {
        let leaders = Atomic<Int>(0)
        let batches = Mutex<[[Int]]>([])
    }

    /// A write as `WorkingMemory.write` runs it: queue, wait or lead, run the batch.
    static func write(_ q: WriteQueue, _ probe: Probe, _ value: Int) -> Int {
        let w = TypedWrite<Int> { s throws(WireError) in
            s.rev += 1
            return value
        }
        if !q.enqueue(w) { w.signal.wait() }
        if !w.finished {
            #expect(probe.leaders.add(1, ordering: .relaxed).newValue == 1, "one leader at a time")
            let batch = q.takeBatch()
            var state = WorkingState()
            for job in batch { job.run(&state) }
            probe.batches.withLock { $0.append(batch.compactMap { ($0 as? TypedWrite<Int>).flatMap { try? $0.outcome.get() } }) }
            probe.leaders.subtract(1, ordering: .relaxed)
            q.finish(batch, leader: w)
        }
        return (try? w.outcome.get()) ?? -1
    }

    @Test("64 concurrent writes: each answered once with its own outcome, one leader at a time")
    func concurrentWritesAreBatched() {
        let q = WriteQueue()
        let probe = Probe()
        let results = Mutex<[Int]>([])
        DispatchQueue.concurrentPerform(iterations: 64) { i in
            let r = Self.write(q, probe, i)
            results.withLock { $0.append(r) }
        }
        #expect(results.withLock { $0.sorted() } == Array(0..<64))
        let all = probe.batches.withLock { $0 }
        #expect(all.flatMap { $0 }.sorted() == Array(0..<64), "every write ran in exactly one batch")
    }

    @Test("writes queued while a batch is under way go together in the next, in arrival order")
    func queuedWritesShareTheNextBatch() {
        let q = WriteQueue()
        let first = TypedWrite<Int> { _ throws(WireError) in 0 }
        #expect(q.enqueue(first), "the first write leads")
        #expect(q.takeBatch().count == 1)
        let later = (1...3).map { i in TypedWrite<Int> { _ throws(WireError) in i } }
        for w in later { #expect(!q.enqueue(w), "a batch is under way: they wait") }
        q.finish([first], leader: first)
        // The lead goes to the first write queued meanwhile; its batch is all three.
        #expect(later[0].signal.wait(timeout: .now() + 10) == .success && !later[0].finished)
        let next = q.takeBatch()
        #expect(next.count == 3 && next.elementsEqual(later, by: ===))
        var state = WorkingState()
        for job in next { job.run(&state) }
        q.finish(next, leader: later[0])
        #expect(later.allSatisfy(\.finished) && later.map { (try? $0.outcome.get()) ?? -1 } == [1, 2, 3])
    }

    @Test("a failed batch fails every write in it")
    func failedBatch() {
        let q = WriteQueue()
        let w = TypedWrite<Int> { _ throws(WireError) in 1 }
        #expect(q.enqueue(w))
        let batch = q.takeBatch()
        for job in batch { job.fail(.app(.unavailable, "cut")) }
        q.finish(batch, leader: w)
        #expect(w.finished)
        #expect(throws: WireError.self) { try w.outcome.get() }
        // The queue is free again: the next write leads.
        #expect(q.enqueue(TypedWrite<Int> { _ throws(WireError) in 2 }))
    }
}
