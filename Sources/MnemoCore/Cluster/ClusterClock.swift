import Synchronization

/// A cluster node's clock: wall time is PostgreSQL's, as last read, carried forward by this
/// host's monotonic clock. Every write transaction reads the database's time under the
/// cluster's write lock and sets the offset from it before anything is decided, so TTLs,
/// lease expiries (`expires_at`) and timestamps are stamped on one clock for all nodes: a
/// node's own wall clock, however wrong, never extends a lease. A node turns a replicated
/// lease's database-time expiry into its own monotonic deadline when it applies it, with
/// the offset of that moment; the monotonic reading itself is this host's, so it never
/// goes back (deadlines, idle timers and latencies rely on that).
public final class ClusterClock: TimeSource {
    /// Database time minus this host's monotonic time, in ns.
    private let offsetNs = Atomic<Int64>(0)
    private let host = SystemTime()

    /// A clock that starts from this host's wall clock until the database is first read.
    public init() {
        offsetNs.store(host.nowMs() * 1_000_000 - Int64(host.monotonicNs()), ordering: .relaxed)
    }

    /// Database milliseconds since the epoch (estimated between readings).
    public func nowMs() -> Int64 { (Int64(host.monotonicNs()) + offsetNs.load(ordering: .relaxed)) / 1_000_000 }

    /// This host's monotonic clock.
    public func monotonicNs() -> UInt64 { host.monotonicNs() }

    /// Takes the database's reading `dbMs`, made at most a round trip ago. It replaces the
    /// estimate outright, so a host clock that was wrong at start, or drifts, is corrected
    /// at the next reading (wall time may step back by up to a round trip).
    func observe(dbMs: Int64) {
        offsetNs.store(dbMs * 1_000_000 - Int64(host.monotonicNs()), ordering: .relaxed)
    }
}
