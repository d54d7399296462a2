import Logging
import MnemoProtocol
import Synchronization

/// A cluster's audit log, in PostgreSQL (`mnemo_audit`): every node's audit writer appends
/// its batches there and `audit.query` on any node reads them all, newest first. One
/// connection, opened at first use and again after it broke.
final class ClusterAudit: Sendable {
    private let settings: ClusterSettings
    private let conn = Mutex<ConnectionBox>(ConnectionBox(role: "audit"))
    private let logger: Logger

    init(settings: ClusterSettings, logger: Logger) {
        self.settings = settings
        self.logger = logger
    }

    /// Appends entries (in statements of at most 1000 rows).
    func write(_ batch: [AuditEntry]) throws(WireError) {
        try run { c throws(PGError) in
            var i = 0
            while i < batch.count {
                let chunk = batch[i..<min(i + 1000, batch.count)]
                var sql = "INSERT INTO mnemo_audit (at, node, principal, agent, uid, pid, method, ns, target, allowed, error, rev) VALUES "
                var params: [PGParam] = []
                for (j, e) in chunk.enumerated() {
                    sql += (j == 0 ? "(" : ", (") + (1...12).map { "$\(params.count + $0)" }.joined(separator: ", ") + ")"
                    params += [.int(e.at), .text(settings.node), .text(e.principal), .text(e.agent), .int(Int64(e.uid)),
                               .int(Int64(e.pid)), .text(e.method), .text(e.ns), .text(e.target), .text(e.allowed ? "true" : "false"),
                               .text(e.error), .int(e.rev)]
                }
                try c.exec(sql, params)
                i += chunk.count
            }
        }
    }

    /// Deletes entries older than `cutoff`.
    func prune(before cutoff: Int64) throws(WireError) {
        try run { c throws(PGError) in _ = try c.exec("DELETE FROM mnemo_audit WHERE at < $1", [.int(cutoff)]) }
    }

    /// Entries, newest first, filtered as ``AuditLog/query(ns:agent:since:limit:visible:)``
    /// describes; read in pages until `limit` visible ones are found.
    func query(ns: String?, agent: String?, since: Int64?, limit: Int,
               visible: (@Sendable (String?) -> Bool)?) throws(WireError) -> [AuditEntry] {
        try run { c throws(PGError) in
            var out: [AuditEntry] = []
            var before = Int64.max
            let page = max(limit, 256)
            while out.count < limit {
                var sql = "SELECT id, at, principal, agent, uid, pid, method, ns, target, allowed, error, rev FROM mnemo_audit WHERE id < $1"
                var params: [PGParam] = [.int(before)]
                if let ns {
                    // The namespace or anything under it (byte order: the column is COLLATE "C").
                    sql += " AND (ns = $2 OR (ns >= $3 AND ns < $4))"
                    params += [.text(ns), .text(ns + "/"), .text(ns + "0")]
                }
                if let agent {
                    params.append(.text(agent))
                    sql += " AND agent = $\(params.count)"
                }
                if let since {
                    params.append(.int(since))
                    sql += " AND at >= $\(params.count)"
                }
                sql += " ORDER BY id DESC LIMIT \(page)"
                let rows = try c.exec(sql, params)
                for r in 0..<rows.count {
                    let text = { (col: Int) in rows.isNull(r, col) ? nil : rows.text(r, col) }
                    var e = AuditEntry(at: rows.int(r, 1), principal: rows.text(r, 2), agent: text(3),
                                       uid: UInt32(truncatingIfNeeded: rows.int(r, 4)), pid: Int32(truncatingIfNeeded: rows.int(r, 5)),
                                       method: rows.text(r, 6), ns: text(7), target: text(8), allowed: rows.text(r, 9) == "t",
                                       error: text(10), rev: text(11).flatMap { Int64($0) })
                    e.id = rows.int(r, 0)
                    before = e.id
                    if let visible, !visible(e.ns) { continue }
                    out.append(e)
                    if out.count == limit { break }
                }
                if rows.count < page { break }
            }
            return out
        }
    }

    private func run<T: Sendable>(_ body: (PGConnection) throws(PGError) -> T) throws(WireError) -> T {
        try conn.withLock { box throws(WireError) in try box.withRetry(settings, logger, body) }
    }
}
