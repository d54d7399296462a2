import Foundation
import GRDB
import Logging
import MnemoProtocol
import Synchronization

/// Semantic memory: facts and preferences with embeddings, one ``VectorCollection`` per
/// namespace, searched exactly in memory and persisted in SQLite (`semantic.sqlite`:
/// vectors as little-endian float32 BLOBs, loaded into the matrices at start-up).
///
/// Writes go through the database's group commit; the in-memory collections are changed
/// after the commit, on the writer thread, in commit order (so memory and disk agree and
/// a restart returns identical search results).
public final class SemanticStore: Sendable {
    /// The SQLite database behind it.
    public let db: SQLiteStore
    let collections = Mutex<[String: VectorCollection]>([:])
    /// Embeds `text` when no vector is given.
    public let embedder: any Embedder
    /// Metric of new collections.
    public let defaultMetric: Metric
    /// Score at or above which an existing record is reported in `similar`.
    public let similarScore: Float
    /// The mode of a `sem.search` with text and no `mode` (``SemanticSettings/defaultMode``).
    public let defaultMode: SearchMode
    let limits: Limits
    /// Per-principal quotas (`semantic_records`).
    let quotas: QuotaBook
    let time: any TimeSource
    let logger: Logger
    /// Live records (all collections).
    let recordCount = Atomic<Int>(0)
    let observers = WatchObservers()

    /// WAL pages (4 KiB) written between automatic checkpoints.
    static let walCheckpointPages = 16_384

    /// Model name recorded for collections filled with client-sent vectors.
    public static let clientModel = "client"

    /// Opens `dir/semantic.sqlite` and loads every vector into memory.
    /// - Throws: when the database cannot be opened or holds an inconsistent record.
    public init(dir: String, durability: Durability, limits: Limits, time: any TimeSource, embedder: any Embedder,
                defaultMetric: Metric = .cosine, similarScore: Float = 0.95, defaultMode: SearchMode = .hybrid,
                quotas: QuotaBook = QuotaBook(), logger: Logger,
                nextRevision: @escaping @Sendable () throws(WireError) -> Int64) throws(StorageError) {
        self.limits = limits
        self.quotas = quotas
        self.time = time
        self.embedder = embedder
        self.defaultMetric = defaultMetric
        self.similarScore = similarScore
        self.defaultMode = defaultMode
        self.logger = logger
        db = try SQLiteStore(dir: dir, name: "semantic", durability: durability, migrator: Self.migrator, logger: logger,
                             nextRevision: nextRevision)
        // Checkpoint every 64 MiB of WAL rather than SQLite's 4 MiB: a bulk load writes
        // about 2.3 KB per fact, and each checkpoint fsyncs twice on the writer thread
        // (measured: about a third of a 100k-fact load over one connection).
        do {
            try db.writer.writeWithoutTransaction { try $0.execute(sql: "PRAGMA wal_autocheckpoint = \(Self.walCheckpointPages)") }
        } catch {
            throw StorageError("cannot configure semantic.sqlite: \(error)")
        }
        if db.damage != nil { logger.error("semantic tier starts degraded: nothing loaded") }
        // A damaged database starts with nothing loaded; its calls are refused (CORRUPT).
        if db.damage == nil { try load() }
    }

    private func load() throws(StorageError) {
        let started = time.monotonicNs()
        do {
            try db.writer.read { db in
                for row in try Row.fetchAll(db, sql: "SELECT ns, dims, metric, model FROM collections") {
                    let ns: String = row[0]
                    guard let metric = Metric(rawValue: row[2]) else { throw StorageError("collection \(ns): unknown metric") }
                    collections.withLock { $0[ns] = VectorCollection(ns: ns, dims: row[1], metric: metric, model: row[3]) }
                }
                let all = collections.withLock { $0 }
                let cursor = try Row.fetchCursor(db, sql: "SELECT \(Self.columns), vector FROM facts ORDER BY rowid")
                while let row = try cursor.next() {
                    let record = try Self.record(row)
                    guard let c = all[record.ns] else { throw StorageError("fact \(record.id) in \(record.ns) has no collection") }
                    let raw = VectorCodec.fromLittleEndian(row["vector"])
                    guard raw.count == c.dims, let v = try? VectorCodec.prepare(raw, for: c.metric, field: "vector") else {
                        throw StorageError("fact \(record.id) in \(record.ns): stored vector does not fit its collection")
                    }
                    c.put(record, prepared: v)
                    recordCount.add(1, ordering: .relaxed)
                }
            }
        } catch let error as StorageError {
            throw error
        } catch {
            throw StorageError("cannot load semantic.sqlite: \(error)")
        }
        logger.info("semantic memory loaded", metadata: [
            "records": "\(recordCount.load(ordering: .relaxed))", "collections": "\(collections.withLock { $0.count })",
            "ms": "\((time.monotonicNs() - started) / 1_000_000)",
        ])
    }

    /// Registers `observer` for the watch events of committed changes (tier `sem`: kinds
    /// `upsert`, `delete` and `expire`, with the record's id), delivered in commit order.
    public func observe(_ observer: @escaping @Sendable ([WatchEvent]) -> Void) {
        observers.observe(observer)
    }

    /// The collection of `ns`, if any.
    public func collection(_ ns: String) -> VectorCollection? { collections.withLock { $0[ns] } }

    /// Collections under a namespace prefix (whole segments).
    func collections(under prefix: String) -> [VectorCollection] {
        collections.withLock { all in
            all.values.filter { Validate.covers(prefix, $0.ns) }
        }
    }

    /// Live records, all collections.
    public var count: Int { recordCount.load(ordering: .relaxed) }

    /// Collections.
    public var collectionCount: Int { collections.withLock { $0.count } }

    /// Bytes held by vector matrices.
    public var matrixBytes: Int { collections.withLock { Array($0.values) }.reduce(0) { $0 + $1.matrixBytes } }

    /// Commits what is queued and stops the writer.
    public func close() { db.close() }

    // MARK: rows

    /// The columns of a record, in `facts` and `fact_versions` alike.
    static let columns = "ns, id, text, data, tags, confidence, superseded_by, expires_at, version, agent, principal, uid, pid, at, valid_from, valid_to"

    /// Inserts one fact: ``columns``, `vector`, then `nskey` (``FTSQuery/subtreeKeys(_:)`` of its namespace).
    static let insertSQL = "INSERT INTO facts (\(columns), vector, nskey) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"

    /// Inserts `r` with its (raw) vector into `facts`; its `seq`.
    static func insert(_ r: SemanticRecord, vector: [Float], into db: Database) throws -> Int64 {
        try db.cachedStatement(sql: insertSQL).execute(arguments: [
            r.ns, r.id, r.text, r.data.map { String(decoding: $0, as: UTF8.self) }, tagsJSON(r.tags), r.confidence,
            r.supersededBy, r.expiresAt, r.version, r.provenance.agent, r.provenance.principal, Int64(r.provenance.uid),
            Int64(r.provenance.pid), r.provenance.at, r.validFrom == r.provenance.at ? nil : r.validFrom, r.validTo,
            VectorCodec.bytes(vector), FTSQuery.subtreeKeys(r.ns),
        ])
        return db.lastInsertedRowID
    }

    static func record(_ row: Row) throws -> SemanticRecord {
        let tagsText: String = row["tags"]
        guard case .array(let items)? = try? JSONParser.parse(tagsText) else { throw StorageError("bad tags column") }
        let dataText: String? = row["data"]
        let provenance = Provenance(agent: row["agent"], principal: row["principal"], uid: UInt32(truncatingIfNeeded: row["uid"] as Int64),
                                    pid: Int32(truncatingIfNeeded: row["pid"] as Int64), at: row["at"], rev: row["version"])
        return SemanticRecord(id: row["id"], ns: row["ns"], text: row["text"], data: dataText.map { Array($0.utf8) },
                              tags: items.compactMap(\.stringValue), confidence: row["confidence"],
                              supersededBy: row["superseded_by"], expiresAt: row["expires_at"], version: row["version"],
                              provenance: provenance, validFrom: row["valid_from"], validTo: row["valid_to"])
    }

    static func tagsJSON(_ tags: [String]) -> String {
        var w = JSONWriter(capacity: 64)
        w.value(.array(tags.map { .string($0) }))
        return String(decoding: w.bytes, as: UTF8.self)
    }
}

extension Provenance {
    /// A provenance read back from storage.
    init(agent: String, principal: String, uid: UInt32, pid: Int32, at: Int64, rev: Int64) {
        self.init(caller: Caller(agent: agent, principal: principal, uid: uid, gid: 0, pid: pid), at: at, rev: rev)
    }
}
