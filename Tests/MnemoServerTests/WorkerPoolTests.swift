import Dispatch
import Synchronization
import Testing

@testable import MnemoServer

@Suite("worker pool for off-loop calls")
struct WorkerPoolTests {
    /// Off-loop calls block (a write waits for its group commit): all of them must be able
    /// to wait at once, or the writer only ever sees a few. 64 jobs that each wait until all
    /// 64 have started finish only if the pool runs them concurrently.
    @Test func blockedJobsDoNotHoldBackTheOthers() {
        let pool = WorkerPool(name: "test-worker", maxThreads: 256)
        let n = 64
        let started = Mutex(0)
        let allStarted = DispatchSemaphore(value: 0)
        let done = DispatchSemaphore(value: 0)
        for _ in 0..<n {
            pool.async {
                let count = started.withLock { c in
                    c += 1
                    return c
                }
                if count == n {
                    for _ in 0..<n { allStarted.signal() }
                }
                allStarted.wait()
                done.signal()
            }
        }
        var finished = 0
        for _ in 0..<n where done.wait(timeout: .now() + .seconds(10)) == .success { finished += 1 }
        #expect(finished == n)
    }

    @Test func jobsBeyondTheLimitWaitTheirTurn() {
        let pool = WorkerPool(name: "test-small", maxThreads: 2)
        let ran = Mutex(0)
        let done = DispatchSemaphore(value: 0)
        for _ in 0..<100 {
            pool.async {
                ran.withLock { $0 += 1 }
                done.signal()
            }
        }
        for _ in 0..<100 { _ = done.wait(timeout: .now() + .seconds(10)) }
        #expect(ran.withLock { $0 } == 100)
    }
}
