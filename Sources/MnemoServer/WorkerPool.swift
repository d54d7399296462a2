import Foundation
import MnemoCore
import Synchronization

/// The threads that run off-loop calls (SQLite work), growing on demand up to `maxThreads`.
///
/// Why not a concurrent `DispatchQueue`: on Linux, libdispatch runs about one thread per
/// core for it and does not add threads when they block. Off-loop calls block by design
/// (a write waits for its group commit), so with GCD at most a handful were in flight and
/// the SQLite writer committed groups of 1-2 appends (measured: 32 clients, 3.6k appends/s).
/// Here every waiting call holds its own thread, so the writer gathers the appends of all
/// waiting clients into one commit.
final class WorkerPool: Sendable {
    private struct State {
        var jobs: [(@Sendable () -> Void)?] = []
        var head = 0
        var idle = 0
        var threads = 0
    }

    private let state = Mutex(State())
    private let available = DispatchSemaphore(value: 0)
    private let maxThreads: Int
    private let name: String

    /// A pool named `name` (thread names) of at most `maxThreads` threads.
    init(name: String, maxThreads: Int) {
        self.name = name
        self.maxThreads = maxThreads
    }

    /// Runs `job` on a pool thread: an idle one, a new one while fewer than `maxThreads`
    /// exist, else the next to finish (jobs start in submission order).
    func async(_ job: @escaping @Sendable () -> Void) {
        let spawn = state.withLock { s -> Bool in
            s.jobs.append(job)
            guard s.jobs.count - s.head > s.idle, s.threads < maxThreads else { return false }
            s.threads += 1
            return true
        }
        if spawn {
            Threads.start("\(name)-\(state.withLock { $0.threads })") { [self] in loop() }
        }
        available.signal()
    }

    private func loop() {
        while true {
            state.withLock { $0.idle += 1 }
            available.wait()
            let job = state.withLock { s -> (@Sendable () -> Void)? in
                s.idle -= 1
                let job = s.jobs[s.head]
                s.jobs[s.head] = nil  // release what the job captured
                s.head += 1
                if s.head > 1024, s.head * 2 > s.jobs.count {
                    s.jobs.removeFirst(s.head)
                    s.head = 0
                }
                return job
            }
            job?()
        }
    }
}
