import Foundation
import GRDB
import MnemoProtocol

/// One episodic record as stored: what happened, where, when and by whom.
public struct EpisodeRecord: Sendable, Equatable {
    /// Server-assigned id (`ep_<rev>`), opaque to clients.
    public var id: String
    /// The namespace it lives in.
    public var ns: String
    /// Client-chosen kind; `summary` for records written by the summarizer.
    public var kind: String
    /// The text, indexed for full-text search.
    public var content: String
    /// Structured payload as compact JSON, nil when none was given.
    public var data: [UInt8]?
    /// The task the writer named.
    public var task: String?
    /// Tags (distinct).
    public var tags: [String]
    /// Revision of the append; records are ordered by it.
    public var rev: Int64
    /// Server time of the append, ms since the epoch.
    public var at: Int64
    /// The server's stamp.
    public var provenance: Provenance
    /// Sources (for a summary: the ids it covers); empty when none.
    public var derivedFrom: [String]
    /// Whether a summary covers it.
    public var summarized: Bool
    /// Whether it is protected from pruning.
    public var pinned: Bool

    /// The columns every record query selects, in ``init(row:)``'s order.
    static let columns = "rev, id, ns, kind, content, data, task, tags, at, agent, principal, uid, pid, derived_from, summarized, pinned"

    /// How many ``columns`` there are (the index of the first column selected after them).
    static let columnCount = 16

    /// ``columns`` qualified by a table alias (`e.rev, e.id, ...`), for joins.
    static func qualifiedColumns(_ alias: String) -> String {
        columns.split(separator: ",").map { alias + "." + $0.trimmingCharacters(in: .whitespaces) }.joined(separator: ", ")
    }

    /// Decodes the current row of a query selecting ``columns`` first, from a GRDB `Row` or
    /// a raw statement (``StatementColumns``: GRDB's generic `Row` decoding was a quarter of
    /// an `ep.query` in mnemod, so the hot reads decode from the statement).
    init<C: ColumnReader>(columns c: C) {
        rev = c.int64(0)
        id = c.text(1) ?? ""
        ns = c.text(2) ?? ""
        kind = c.text(3) ?? ""
        content = c.text(4) ?? ""
        data = c.bytes(5)
        task = c.text(6)
        tags = EpisodeRecord.decodeList(c.text(7) ?? "[]")
        at = c.int64(8)
        let derived = c.text(13).map(EpisodeRecord.decodeList)
        derivedFrom = derived ?? []
        summarized = c.int64(14) != 0
        pinned = c.int64(15) != 0
        let caller = Caller(agent: c.text(9) ?? "", principal: c.text(10) ?? "", uid: UInt32(truncatingIfNeeded: c.int64(11)),
                            gid: 0, pid: Int32(truncatingIfNeeded: c.int64(12)))
        provenance = Provenance(caller: caller, at: at, rev: rev, task: task, derivedFrom: derived)
    }

    /// The records `sql` (selecting ``columns`` first) gives on `db`, a GRDB connection
    /// (e.g. inside a write), decoded from the statement's columns. `cached`: keep the
    /// prepared statement (for SQL that does not vary with the arguments).
    static func fetchAll(_ db: Database, _ sql: String, _ arguments: [DatabaseValue] = [], cached: Bool = true) throws -> [EpisodeRecord] {
        let statement = cached ? try db.cachedStatement(sql: sql) : try db.makeStatement(sql: sql)
        var out: [EpisodeRecord] = []
        try RawReaders.forEachRow(statement.sqliteStatement, arguments) {
            out.append(EpisodeRecord(columns: StatementColumns($0)))
            return true
        }
        return out
    }

    /// A JSON array of strings as stored in a TEXT column.
    static func encodeList(_ list: [String]) -> String {
        JSON.array(list.map(JSON.string)).text
    }

    /// The strings of a stored JSON array (empty for anything else).
    static func decodeList(_ text: String) -> [String] {
        if text == "[]" { return [] }
        guard let parsed = try? JSONParser.parse(text), let items = parsed.arrayValue else { return [] }
        return items.compactMap(\.stringValue)
    }
}
