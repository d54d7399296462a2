import CMnemoSys
#if canImport(Glibc)
import Glibc
#endif

/// The one way mnemod starts a thread: a POSIX thread, named (the first 15 bytes show in
/// `top -H` and `perf`), detached unless it is to be joined.
public enum Threads {
    /// Runs `body` on a new thread named `name`; a `joinable` one is returned for ``join(_:)``.
    /// Failing to start a thread (the process is out of threads or memory) stops mnemod:
    /// every thread it starts is one its state depends on.
    @discardableResult
    public static func start(_ name: String, joinable: Bool = false, _ body: @escaping @Sendable () -> Void) -> pthread_t {
        final class Job {
            let name: String
            let body: @Sendable () -> Void
            init(_ name: String, _ body: @escaping @Sendable () -> Void) {
                self.name = name
                self.body = body
            }
        }
        let job = Unmanaged.passRetained(Job(name, body)).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { arg in
            guard let arg else { return nil }
            let job = Unmanaged<Job>.fromOpaque(arg).takeRetainedValue()
            mnemo_set_thread_name(job.name)
            job.body()
            return nil
        }, job)
        guard rc == 0 else {
            Unmanaged<Job>.fromOpaque(job).release()
            fatalError("cannot start thread \(name): \(String(cString: strerror(rc)))")
        }
        if !joinable { pthread_detach(thread) }
        return thread
    }

    /// Waits for a joinable thread to end.
    public static func join(_ thread: pthread_t) {
        pthread_join(thread, nil)
    }
}
