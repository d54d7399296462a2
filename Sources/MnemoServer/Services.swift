import Dispatch
import Logging
import MnemoCore
import ServiceLifecycle

/// Runs the socket server until graceful shutdown, then drains it.
public struct ServerService: Service {
    let server: Server

    /// Wraps a bound server.
    public init(server: Server) { self.server = server }

    /// Starts the loops, waits for shutdown, then stops accepting and drains.
    public func run() async throws {
        server.start()
        try? await gracefulShutdown()
        server.shutdown()
    }
}

/// A background job run every `intervalMs` until graceful shutdown (a run in progress
/// finishes first; the first run comes after one interval). The job runs on a dispatch
/// queue, never on the cooperative pool or an event loop, since jobs block (SQLite
/// commits). One mechanism for every periodic job of the daemon: the expiry sweep, the
/// semantic maintenance and the episodic retention policies (`PeriodicService+*.swift`).
public struct PeriodicService: Service {
    /// Milliseconds between runs; 0: the job never runs.
    let intervalMs: Int
    let job: @Sendable () -> Void

    /// `job` every `intervalMs` (0: never).
    public init(intervalMs: Int, job: @escaping @Sendable () -> Void) {
        self.intervalMs = intervalMs
        self.job = job
    }

    /// Runs until graceful shutdown.
    public func run() async throws {
        guard intervalMs > 0 else {
            try? await gracefulShutdown()
            return
        }
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                // Cancellation (graceful shutdown) ends the sleep early; that is not an error.
                try? await Task.sleep(for: .milliseconds(intervalMs))
                if Task.isCancelled { break }
                await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                    DispatchQueue.global(qos: .utility).async {
                        job()
                        done.resume()
                    }
                }
            }
        }
    }
}
