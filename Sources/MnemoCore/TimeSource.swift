import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where the stores read the time; injected so that tests never sleep.
public protocol TimeSource: Sendable {
    /// Wall-clock milliseconds since the Unix epoch (used for TTLs and timestamps).
    func nowMs() -> Int64
    /// A monotonic clock in nanoseconds (used for leases and latencies).
    func monotonicNs() -> UInt64
}

/// The system clocks.
public struct SystemTime: TimeSource {
    /// The system clocks.
    public init() {}

    /// `CLOCK_REALTIME` in milliseconds.
    public func nowMs() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }

    /// `CLOCK_MONOTONIC` in nanoseconds.
    public func monotonicNs() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}

/// A clock that moves only when told to, for tests.
public final class ManualTime: TimeSource {
    private let state: Mutex<(wall: Int64, mono: UInt64)>

    /// A clock starting at `ms` wall time.
    public init(startMs: Int64 = 1_800_000_000_000) { state = Mutex((startMs, 1_000_000_000)) }

    /// The current wall time.
    public func nowMs() -> Int64 { state.withLock { $0.wall } }
    /// The current monotonic time.
    public func monotonicNs() -> UInt64 { state.withLock { $0.mono } }

    /// Moves both clocks forward.
    public func advance(ms: Int64) {
        state.withLock {
            $0.wall += ms
            $0.mono += UInt64(ms) * 1_000_000
        }
    }
}
