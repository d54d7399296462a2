import Foundation
import GRDB
import GRDBSQLite
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

    /// Decodes a row selected with ``columns``.
    init(row: Row) {
        rev = row[0]
        id = row[1]
        ns = row[2]
        kind = row[3]
        content = row[4]
        let dataText: String? = row[5]
        data = dataText.map { Array($0.utf8) }
        task = row[6]
        tags = EpisodeRecord.decodeList(row[7])
        at = row[8]
        let derivedText: String? = row[13]
        let derived = derivedText.map(EpisodeRecord.decodeList)
        derivedFrom = derived ?? []
        summarized = row[14]
        pinned = row[15]
        let uid: Int64 = row[11]
        let pid: Int64 = row[12]
        let caller = Caller(agent: row[9], principal: row[10], uid: UInt32(truncatingIfNeeded: uid), gid: 0,
                            pid: Int32(truncatingIfNeeded: pid))
        provenance = Provenance(caller: caller, at: at, rev: rev, task: task, derivedFrom: derived)
    }

    /// Decodes the current row of a statement selecting ``columns`` from its columns
    /// directly (GRDB's generic `Row` decoding was a quarter of an `ep.query` in mnemod).
    init(_ s: SQLiteStatement) {
        func text(_ i: Int32) -> String? {
            guard let p = sqlite3_column_text(s, i) else { return nil }
            return String(decoding: UnsafeBufferPointer(start: p, count: Int(sqlite3_column_bytes(s, i))), as: UTF8.self)
        }
        func bytes(_ i: Int32) -> [UInt8]? {
            guard let p = sqlite3_column_text(s, i) else { return nil }
            return Array(UnsafeBufferPointer(start: p, count: Int(sqlite3_column_bytes(s, i))))
        }
        rev = sqlite3_column_int64(s, 0)
        id = text(1) ?? ""
        ns = text(2) ?? ""
        kind = text(3) ?? ""
        content = text(4) ?? ""
        data = bytes(5)
        task = text(6)
        tags = EpisodeRecord.decodeList(text(7) ?? "[]")
        at = sqlite3_column_int64(s, 8)
        let derived = text(13).map(EpisodeRecord.decodeList)
        derivedFrom = derived ?? []
        summarized = sqlite3_column_int64(s, 14) != 0
        pinned = sqlite3_column_int64(s, 15) != 0
        let caller = Caller(agent: text(9) ?? "", principal: text(10) ?? "", uid: UInt32(truncatingIfNeeded: sqlite3_column_int64(s, 11)),
                            gid: 0, pid: Int32(truncatingIfNeeded: sqlite3_column_int64(s, 12)))
        provenance = Provenance(caller: caller, at: at, rev: rev, task: task, derivedFrom: derived)
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
