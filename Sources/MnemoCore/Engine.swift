import Logging

/// The daemon's state, all tiers together; what the server dispatches into.
public final class Engine: Sendable {
    /// Limits in force.
    public let limits: Limits
    /// The clock every store reads.
    public let time: any TimeSource
    /// The working-memory tier.
    public let working: WorkingMemory
    /// Wall time at start-up.
    public let startedAtMs: Int64
    /// Monotonic time at start-up.
    public let startedAtNs: UInt64

    /// A fresh engine.
    public init(limits: Limits, time: any TimeSource = SystemTime(), logger: Logger) {
        self.limits = limits
        self.time = time
        self.working = WorkingMemory(limits: limits, time: time)
        self.startedAtMs = time.nowMs()
        self.startedAtNs = time.monotonicNs()
    }

    /// The global revision.
    public var revision: Int64 { working.revision }

    /// Milliseconds since start-up.
    public var uptimeMs: Int64 { Int64((time.monotonicNs() - startedAtNs) / 1_000_000) }
}
