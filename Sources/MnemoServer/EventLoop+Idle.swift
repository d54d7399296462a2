import CMnemoSys
#if canImport(Glibc)
import Glibc
#endif
import Logging
import MnemoCore
import MnemoProtocol
import Synchronization

/// Idle connections: a partial line past `idle_timeout_ms`, a silent connection past
/// `idle_connection_timeout_ms`, cut off with an error line.
extension EventLoop {
    /// Closes connections whose partial line is older than `idle_timeout_ms`, and (when
    /// `idle_connection_timeout_ms` is set) connections silent for longer that wait for
    /// nothing: no watch, no parked call. Each gets an error line first.
    func checkIdle() {
        let now = engine.time.monotonicNs()
        guard now - lastIdleCheckNs >= 250_000_000 else { return }
        lastIdleCheckNs = now
        let lineNs = UInt64(limits.idleTimeoutMs) * 1_000_000
        let silentNs = UInt64(limits.idleConnectionTimeoutMs) * 1_000_000
        // A connection the server paused (backpressure, a call on a worker) is not idle by
        // its own doing.
        // One cut off already, waiting for its replies' fsync, is not cut off twice.
        for conn in Array(connections.values) where !conn.readPaused && !(conn.closing && conn.awaitingSync) {
            if conn.partialSinceNs != 0 {
                guard now - conn.partialSinceNs > lineNs else { continue }
                cutOff(conn, .limit("idle_timeout_ms", max: limits.idleTimeoutMs,
                                    "request line not finished within \(limits.idleTimeoutMs) ms of its first byte"))
            } else if silentNs > 0, now - conn.lastInputNs > silentNs, conn.held.isEmpty,
                      !(hub?.hasWatches(connection: conn.session.connection) ?? false) {
                cutOff(conn, .limit("idle_connection_timeout_ms", max: limits.idleConnectionTimeoutMs,
                                    "no request for more than \(limits.idleConnectionTimeoutMs) ms"))
            }
        }
    }

    /// Answers `error` on a connection and closes it (in strict mode, once the replies
    /// before the error line are fsynced and sent).
    func cutOff(_ conn: Connection, _ error: WireError) {
        RPC.writeError(id: .null, error, &conn.output)
        conn.output.byte(0x0A)
        conn.closing = true
        updateInterest(conn)
        for case .parked(let call) in conn.held { call.cancel(engine.working) }
        conn.held.removeAll()
        conn.heldBytes = 0
        if let journal, strict {
            release([conn], through: journal.appendedLSN)
        } else {
            flush(conn)
        }
        if connections[conn.fd] != nil && !conn.awaitingSync { closeConnection(conn) }
    }
}
