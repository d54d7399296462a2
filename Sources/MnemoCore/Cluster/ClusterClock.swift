import Synchronization

/// A cluster node's clock: PostgreSQL's clock, as last read, carried forward by this host's
/// monotonic clock. Every write transaction reads the database's time under the cluster's
/// write lock and sets the offset from it before anything is decided, so lease expiry,
/// TTLs and timestamps are decided on one clock for all nodes: a node's own wall clock,
/// however wrong, never extends a lease. Both readings (`nowMs`, `monotonicNs`) are that
/// one clock, so deadlines recorded by one node mean the same on another.
public final class ClusterClock: TimeSource {
    /// Database time minus this host's monotonic time, in ns.
    private let offsetNs = Atomic<Int64>(0)
    private let host = SystemTime()

    /// A clock that starts from this host's wall clock until the database is first read.
    public init() {
        offsetNs.store(host.nowMs() * 1_000_000 - Int64(host.monotonicNs()), ordering: .relaxed)
    }

    /// Database milliseconds since the epoch (estimated between readings).
    public func nowMs() -> Int64 { Int64(monotonicNs() / 1_000_000) }

    /// Database time in ns since the epoch (estimated between readings).
    public func monotonicNs() -> UInt64 { UInt64(Int64(host.monotonicNs()) + offsetNs.load(ordering: .relaxed)) }

    /// Takes the database's reading `dbMs`, made at most a round trip ago. It replaces the
    /// estimate outright, so a host clock that was wrong at start, or drifts, is corrected at
    /// the next reading (time may step back by a round trip: nothing orders on it but
    /// expiry, which then happens that much later, never earlier than the database says).
    func observe(dbMs: Int64) {
        offsetNs.store(dbMs * 1_000_000 - Int64(host.monotonicNs()), ordering: .relaxed)
    }
}
