import Synchronization

/// Counters the server shares with its handlers (connections, shutdown state).
final class ServerStatus: Sendable {
    let connectionsCurrent = Atomic<Int>(0)
    let connectionsTotal = Atomic<Int>(0)
    let connectionsRefused = Atomic<Int>(0)
    let shuttingDown = Atomic<Bool>(false)
    /// Calls parked until a claim, barrier or proposal they wait for ends (``ParkedCall``).
    let waitingCalls = Atomic<Int>(0)
}
