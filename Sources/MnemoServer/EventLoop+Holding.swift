import CMnemoSys
#if canImport(Glibc)
import Glibc
#endif
import Logging
import MnemoCore
import MnemoProtocol
import Synchronization

/// Replies held back: in `strict` mode until the journal is fsynced through their records,
/// and behind a parked call (`wait_ms`) of the same connection, in request order.
extension EventLoop {
    /// Strict mode: lets `conns`' output as it stands go out once the journal is fsynced
    /// through `lsn`: at once if it is, or if this thread can fsync now; else after the
    /// sync thread's fsync, while the loop goes on.
    func release(_ conns: [Connection], through lsn: UInt64) {
        guard let journal, !journal.syncIfIdle(through: lsn) else {
            for conn in conns where connections[conn.fd] === conn {
                conn.sendLimit = conn.outputEnd
                flush(conn)
            }
            return
        }
        awaitingSync.append((lsn, conns.map { ($0, $0.outputEnd) }))
        journal.requestSync(through: lsn)
    }

    /// Strict mode: sends the output whose records the sync thread has fsynced.
    func releaseSynced() {
        guard let journal, !awaitingSync.isEmpty else { return }
        let synced = journal.syncedLSN
        let due = awaitingSync.prefix { $0.lsn <= synced }.count
        guard due > 0 else {
            // A failed journal never syncs again: what waits would wait forever.
            if journal.failed { journalFailed() }
            return
        }
        for batch in awaitingSync[..<due] {
            for (conn, end) in batch.output where connections[conn.fd] === conn {
                conn.sendLimit = max(conn.sendLimit, end)
                flush(conn)
            }
        }
        awaitingSync.removeFirst(due)
    }

    /// Records were applied in memory when they were appended: if they cannot be made
    /// durable, no reply may acknowledge them. Crash-only: exit, and let the supervisor
    /// restart mnemod, which recovers what the journal holds.
    func journalFailed() -> Never {
        logger.critical("the journal cannot be written; exiting rather than acknowledging writes that would be lost")
        exit(75)
    }

    func park(_ conn: Connection, _ call: Held) {
        conn.held.append(call)
        holding[conn.id] = conn
    }

    /// Moves held replies to the output, in order, up to the first parked call that is
    /// still waiting.
    func releaseHeld() {
        guard !holding.isEmpty else { return }
        let now = engine.time.monotonicNs()
        for conn in Array(holding.values) {
            var moved = false
            while let head = conn.held.first {
                switch head {
                case .ready(let bytes):
                    conn.held.removeFirst()
                    conn.heldBytes -= bytes.count
                    conn.output.raw(bytes)
                    moved = true
                    continue
                case .parked(let call):
                    guard let reply = retry(call, now: now) else { break }
                    conn.held[0] = .ready(reply)
                    conn.heldBytes += reply.count
                    continue
                case .offloaded(let call):
                    guard let reply = call.takeReply() else { break }
                    conn.held[0] = .ready(reply)
                    conn.heldBytes += reply.count
                    workerDone(conn)
                    continue
                }
                break
            }
            if conn.held.isEmpty { holding[conn.id] = nil }
            if moved { markDirty(conn) }
        }
    }

    /// A connection's offloaded call finished: its later lines may run (next iteration,
    /// after this one's journal write).
    func workerDone(_ conn: Connection) {
        conn.awaitingWorker = false
        if conn.readPaused && conn.pendingOutput < limits.maxPendingOutputBytes {
            conn.readPaused = false
            updateInterest(conn)
        }
        resumed.append(conn)
    }

    /// Tries a parked call again if it is due; the reply line when it is answered.
    func retry(_ call: ParkedCall, now: UInt64) -> [UInt8]? {
        let signaled = call.signaled.exchange(false, ordering: .relaxed)
        guard signaled || now >= call.retryAtNs.load(ordering: .relaxed) else { return nil }
        var w = JSONWriter(capacity: 192)
        call.cancel(engine.working)
        do throws(WireError) {
            RPC.beginResult(id: call.id, &w)
            guard try call.attempt(last: now >= call.deadlineNs, &w) else { return nil }
            RPC.endResult(&w)
        } catch {
            w.bytes.removeAll(keepingCapacity: true)
            RPC.writeError(id: call.id, error, &w)
        }
        w.byte(0x0A)
        return w.bytes
    }
}
