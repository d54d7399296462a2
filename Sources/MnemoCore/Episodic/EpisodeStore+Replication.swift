import GRDB

/// The episodic tier on a cluster node (see ``ReplicatedTier``): the full-text index and
/// the per-principal usage are kept by triggers, which the applied rows fire as the
/// written ones did; the vectors and counters in memory follow the rows.
extension EpisodeStore: ReplicatedTier {
    var database: SQLiteStore { store }

    static let derivedTables = ["episodes_fts", "principal_usage"]

    /// Watches on this node see another node's appends and summaries (`append`,
    /// `summarize`) and pins (`pin`, `unpin`, at the record's revision); its prunes are
    /// not delivered here.
    func replicated(_ changes: [RowChange], in db: Database) throws -> () -> Void {
        let episodes = try Changeset.columns("episodes", in: db)
        let vectorColumns = try Changeset.columns("episode_vectors", in: db)
        var records = 0
        var deletions = 0
        var events: [WatchEvent] = []
        var removedEpisodes: [Int64: (ns: String, id: String)] = [:]
        var removedVectors: [(rev: Int64, model: String, dims: Int)] = []
        var addedVectors: [Int64] = []
        for c in changes {
            switch (c.table, c.op) {
            case ("episodes", .insert):
                records += 1
                if let rev: Int64 = c.new[episodes, "rev"], let ns: String = c.new[episodes, "ns"], let id: String = c.new[episodes, "id"] {
                    let kind: String? = c.new[episodes, "kind"]
                    events.append(WatchEvent(rev: rev, tier: "ep", kind: kind == "summary" ? "summarize" : "append", ns: ns, id: id))
                }
            case ("episodes", .delete):
                records -= 1
                if let rev: Int64 = c.old[episodes, "rev"], let ns: String = c.old[episodes, "ns"], let id: String = c.old[episodes, "id"] {
                    removedEpisodes[rev] = (ns, id)
                }
            case ("episodes", .update):
                if let pinned: Bool = c.new[episodes, "pinned"], let rev: Int64 = c.old[episodes, "rev"],
                   let row = try Row.fetchOne(db, sql: "SELECT ns, id FROM episodes WHERE rev = ?", arguments: [rev]) {
                    events.append(WatchEvent(rev: rev, tier: "ep", kind: pinned ? "pin" : "unpin", ns: row[0], id: row[1]))
                }
            case ("episode_deletions", .insert): deletions += 1
            case ("episode_deletions", .delete): deletions -= 1
            case ("episode_vectors", .insert):
                if let rev: Int64 = c.new[vectorColumns, "rev"] { addedVectors.append(rev) }
            case ("episode_vectors", .delete):
                if let rev: Int64 = c.old[vectorColumns, "rev"], let model: String = c.old[vectorColumns, "model"],
                   let dims: Int = c.old[vectorColumns, "dims"] { removedVectors.append((rev, model, dims)) }
            default: break
            }
        }
        var added: [(ns: String, id: String, rev: Int64, model: String, vector: [Float])] = []
        for rev in addedVectors {
            guard let row = try Row.fetchOne(db, sql: """
                SELECT e.ns, e.id, v.model, v.dims, v.vector FROM episode_vectors v JOIN episodes e ON e.rev = v.rev WHERE v.rev = ?
                """, arguments: [rev]) else { continue }
            let raw = VectorCodec.fromLittleEndian(row[4])
            guard raw.count == (row[3] as Int), let v = try? VectorCodec.prepare(raw, for: .cosine, field: "vector") else {
                throw StorageError("episode \(row[1] as String): replicated vector does not match its dims or has no direction")
            }
            added.append((row[0], row[1], rev, row[2], v))
        }
        let removed = removedVectors.compactMap { v in removedEpisodes[v.rev].map { ($0.ns, $0.id, v.model, v.dims) } }
        return { [self] in
            counters.withLock {
                $0.records += records
                $0.deletionsLogged += deletions
            }
            for r in removed { vectors.remove(ns: r.0, id: r.1, model: r.2, dims: r.3) }
            for a in added { vectors.put(ns: a.ns, id: a.id, rev: a.rev, model: a.model, vector: a.vector) }
            emit(events)
        }
    }
}
