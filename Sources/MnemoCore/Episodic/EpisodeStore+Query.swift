import GRDB
import MnemoProtocol

extension EpisodeStore {
    /// One page of `ep.query`.
    public struct Page: Sendable, Equatable {
        /// Records in revision order.
        public var records: [EpisodeRecord]
        /// Present when more records follow.
        public var cursor: EpisodeCursor?
    }

    /// Records under a namespace prefix, filtered, in revision order, one page at a time.
    ///
    /// The namespace itself and its descendants are read with two index range scans
    /// (`(ns, rev)`), each stopping after `limit + 1` rows, and merged; so the latest
    /// records of a namespace cost O(limit log n) however large the store is.
    /// - Throws: -32602 for bad filters (named), mapped database errors.
    /// - Complexity: O((limit + skipped) log n), where skipped rows fail a filter.
    public func query(_ q: EpisodeQuery) throws(WireError) -> Page {
        try Validate.namespace(q.ns)
        if let since = q.since, let until = q.until, since >= until {
            throw .invalidParams("until", "must be later than since")
        }
        guard (1...limits.maxListLimit).contains(q.limit) else {
            throw .invalidParams("limit", "must be between 1 and \(limits.maxListLimit)")
        }
        if let c = q.cursor, c.descending != q.descending {
            throw .invalidParams("cursor", "was issued for order \(c.descending ? "desc" : "asc")")
        }
        var filters = ""
        var args: [DatabaseValue] = []
        if let c = q.cursor {
            filters += q.descending ? " AND rev < ?" : " AND rev > ?"
            args.append(c.rev.databaseValue)
        }
        if let since = q.since { filters += " AND at >= ?"; args.append(since.databaseValue) }
        if let until = q.until { filters += " AND at < ?"; args.append(until.databaseValue) }
        if let kind = q.kind { filters += " AND kind = ?"; args.append(kind.databaseValue) }
        if let agent = q.agent { filters += " AND agent = ?"; args.append(agent.databaseValue) }
        if let task = q.task { filters += " AND task = ?"; args.append(task.databaseValue) }
        for tag in q.tags {
            filters += " AND EXISTS (SELECT 1 FROM json_each(episodes.tags) WHERE value = ?)"
            args.append(tag.databaseValue)
        }
        let order = q.descending ? "DESC" : "ASC"
        let fetch = q.limit + 1
        // The namespace itself and its descendants ("ns/..." : from "ns/" up to, not
        // including, "ns0"; '0' follows '/'), each an index range scan stopping after
        // `fetch` rows, merged by SQLite: ONE statement, so one implicit read snapshot and
        // no BEGIN/COMMIT around it.
        let sql = """
            SELECT * FROM (SELECT \(EpisodeRecord.columns) FROM episodes WHERE ns = ?\(filters) ORDER BY rev \(order) LIMIT ?)
            UNION ALL
            SELECT * FROM (SELECT \(EpisodeRecord.columns) FROM episodes WHERE ns >= ? AND ns < ?\(filters) ORDER BY rev \(order) LIMIT ?)
            ORDER BY rev \(order) LIMIT ?
            """
        let arguments = [q.ns.databaseValue] + args + [fetch.databaseValue]
            + [(q.ns + "/").databaseValue, (q.ns + "0").databaseValue] + args + [fetch.databaseValue, fetch.databaseValue]
        var records: [EpisodeRecord] = []
        records.reserveCapacity(fetch)
        // A prepared statement kept per connection, rows decoded from the columns directly.
        try store.readRows(sql, arguments) {
            records.append(EpisodeRecord(columns: StatementColumns($0)))
            return true
        }
        guard records.count > q.limit else { return Page(records: records, cursor: nil) }
        records.removeLast(records.count - q.limit)
        return Page(records: records, cursor: EpisodeCursor(rev: records[records.count - 1].rev, descending: q.descending))
    }

    /// ``query(_:)`` showing only records whose namespace `visible` accepts (access
    /// control): pages are refilled from where the last one stopped until `limit` visible
    /// records are found or none are left, so a page is never short while more follow.
    /// - Complexity: O((visible + hidden rows scanned) log n).
    public func query(_ q: EpisodeQuery, visible: (@Sendable (String) -> Bool)?) throws(WireError) -> Page {
        guard let visible else { return try query(q) }
        var found: [EpisodeRecord] = []
        var next = q
        while true {
            let page = try query(next)
            for r in page.records where visible(r.ns) {
                found.append(r)
                if found.count == q.limit {
                    let more = r.rev != page.records.last?.rev || page.cursor != nil
                    return Page(records: found, cursor: more ? EpisodeCursor(rev: r.rev, descending: q.descending) : nil)
                }
            }
            guard let cursor = page.cursor else { return Page(records: found, cursor: nil) }
            next.cursor = cursor
        }
    }

    /// Records by id (unknown ids are left out), in revision order.
    /// - Complexity: O(k log n).
    public func records(ids: [String]) throws(WireError) -> [EpisodeRecord] {
        guard !ids.isEmpty else { return [] }
        let marks = Array(repeating: "?", count: ids.count).joined(separator: ",")
        return try store.read { db in
            try EpisodeRecord.fetchAll(db, "SELECT \(EpisodeRecord.columns) FROM episodes WHERE id IN (\(marks)) ORDER BY rev",
                                       ids.map(\.databaseValue), cached: false)
        }
    }
}
