import GRDB

/// The semantic tier on a cluster node (see ``ReplicatedTier``): the keyword index, which
/// this tier keeps itself (``KeywordIndexChanges``), is re-derived from the applied rows;
/// the per-principal usage is kept by triggers; the vector matrices follow the rows.
extension SemanticStore: ReplicatedTier {
    var database: SQLiteStore { db }

    static let derivedTables = ["facts_fts", "principal_usage"]

    /// Watches on this node see another node's upserts (`upsert`, at the record's
    /// revision); its deletions and expiries are not delivered here.
    func replicated(_ changes: [RowChange], in db: Database) throws -> () -> Void {
        let facts = try Changeset.columns("facts", in: db)
        let versions = try Changeset.columns("fact_versions", in: db)
        var index = KeywordIndexChanges()
        var removed: [(ns: String, id: String)] = []
        var changed: [Int64] = []
        /// Facts rows holding a new version (not only a supersession), for the watch events.
        var written = Set<Int64>()
        for c in changes {
            let columns = c.table == "facts" ? facts : versions
            guard c.table == "facts" || c.table == "fact_versions" else { continue }
            switch c.op {
            case .insert:
                guard let seq: Int64 = c.new[columns, "seq"] else { continue }
                index.inserted(seq: seq)
                if c.table == "facts" {
                    changed.append(seq)
                    written.insert(seq)
                }
            case .update:
                // A row deleted and a new one inserted under the same `seq` in one
                // transaction (a replaced record takes its predecessor's) come as one update.
                guard let seq: Int64 = c.old[columns, "seq"] else { continue }
                let oldText: String? = c.old[columns, "text"]
                let oldNskey: String? = c.old[columns, "nskey"]
                let oldNs: String? = c.old[columns, "ns"]
                let oldId: String? = c.old[columns, "id"]
                if oldText != nil || oldNskey != nil || oldNs != nil || oldId != nil {
                    guard let now = try Row.fetchOne(db, sql: "SELECT text, nskey, ns, id FROM \(c.table) WHERE seq = ?", arguments: [seq])
                    else { continue }
                    if oldText != nil || oldNskey != nil {
                        index.deleted(seq: seq, text: oldText ?? now[0], nskey: oldNskey ?? now[1])
                        index.inserted(seq: seq)
                    }
                    if c.table == "facts", oldNs != nil || oldId != nil { removed.append((oldNs ?? now[2], oldId ?? now[3])) }
                }
                if c.table == "facts" {
                    changed.append(seq)
                    if c.old[columns, "version"] as Int64? != nil { written.insert(seq) }
                }
            case .delete:
                guard let seq: Int64 = c.old[columns, "seq"], let text: String = c.old[columns, "text"],
                      let nskey: String = c.old[columns, "nskey"] else { continue }
                index.deleted(seq: seq, text: text, nskey: nskey)
                if c.table == "facts", let ns: String = c.old[columns, "ns"], let id: String = c.old[columns, "id"] { removed.append((ns, id)) }
            }
        }
        try index.apply(db)
        var loaded: [(record: SemanticRecord, vector: [Float], isNewVersion: Bool)] = []
        var shapes: [String: (dims: Int, metric: Metric, model: String)] = [:]
        for seq in changed {
            guard let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT \(Self.columns), vector FROM facts WHERE seq = ?"),
                                             arguments: [seq]) else { continue }
            let record = try Self.record(row)
            if shapes[record.ns] == nil, let c = try Row.fetchOne(db, sql: "SELECT dims, metric, model FROM collections WHERE ns = ?",
                                                                   arguments: [record.ns]),
               let metric = Metric(rawValue: c[1]) {
                shapes[record.ns] = (c[0], metric, c[2])
            }
            loaded.append((record, VectorCodec.fromLittleEndian(row["vector"]), written.contains(seq)))
        }
        return { [self] in
            for r in removed where collection(r.ns)?.remove(r.id) == true { recordCount.subtract(1, ordering: .relaxed) }
            var events: [WatchEvent] = []
            for l in loaded {
                let ns = l.record.ns
                guard let c = collections.withLock({ all -> VectorCollection? in
                    if let c = all[ns] { return c }
                    guard let shape = shapes[ns] else { return nil }
                    let c = VectorCollection(ns: ns, dims: shape.dims, metric: shape.metric, model: shape.model)
                    all[ns] = c
                    return c
                }), l.vector.count == c.dims, let prepared = try? VectorCodec.prepare(l.vector, for: c.metric, field: "vector") else {
                    logger.error("a replicated fact does not fit its collection; it is not searchable on this node",
                                 metadata: ["ns": "\(ns)", "id": "\(l.record.id)"])
                    continue
                }
                if c.get(l.record.id) == nil { recordCount.add(1, ordering: .relaxed) }
                c.put(l.record, prepared: prepared)
                if l.isNewVersion { events.append(WatchEvent(rev: l.record.version, tier: "sem", kind: "upsert", ns: ns, id: l.record.id)) }
            }
            observers.emit(events)
        }
    }
}
