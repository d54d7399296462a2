import Foundation
import GRDB
import MnemoProtocol

extension EpisodeStore {
    /// One record's embedding, made before the write that stores it.
    struct ContentEmbedding: Sendable {
        /// What the embedder returned (stored as it is).
        var vector: [Float]
        /// Unit length, for the in-memory matrix.
        var prepared: [Float]
        /// The embedder's model.
        var model: String
        /// Whether the embedder cut the text to fit its model.
        var truncated: Bool
    }

    /// The embedding of `text` (a record's content), made on the calling thread.
    /// - Throws: `UNAVAILABLE` when there is no embedder or it fails; `-32602` naming
    ///   `field` when the text has nothing to embed (no letters or digits, or a zero vector).
    /// - Complexity: one embedder call.
    func embed(_ text: String, field: String) throws(WireError) -> ContentEmbedding {
        guard let embedder else { throw .app(.unavailable, "no embedder is configured; nothing was applied") }
        let made = try embedder.embed([text], field: field)
        guard made.count == 1 else { throw .app(.unavailable, "the embedder returned \(made.count) embeddings for one text; nothing was applied") }
        let prepared = try VectorCodec.prepare(made[0].vector, for: .cosine, field: field)
        return ContentEmbedding(vector: made[0].vector, prepared: prepared, model: embedder.model, truncated: made[0].truncated)
    }

    /// Stores `e` as record `rev`'s embedding inside the write, and in memory once the
    /// write has committed.
    func storeVector(_ e: ContentEmbedding, rev: Int64, id: String, ns: String, in ctx: WriteContext) throws {
        try ctx.db.cachedStatement(sql: "INSERT INTO episode_vectors (rev, model, dims, vector, truncated) VALUES (?, ?, ?, ?, ?)")
            .execute(arguments: [rev, e.model, e.vector.count, VectorCodec.bytes(e.vector), e.truncated])
        let vectors = self.vectors
        ctx.afterCommit { vectors.put(ns: ns, id: id, rev: rev, model: e.model, vector: e.prepared) }
    }

    /// Reads every stored embedding into memory (at start-up).
    /// - Throws: when a stored vector is malformed.
    func loadVectors() throws(StorageError) {
        let started = time.monotonicNs()
        let vectors = self.vectors
        do {
            try store.writer.read { db in
                let cursor = try Row.fetchCursor(db, sql: """
                    SELECT v.rev, e.id, e.ns, v.model, v.dims, v.vector FROM episode_vectors v JOIN episodes e ON e.rev = v.rev
                    ORDER BY v.rev
                    """)
                while let row = try cursor.next() {
                    let id: String = row[1]
                    let raw = VectorCodec.fromLittleEndian(row[5])
                    guard raw.count == (row[4] as Int), let v = try? VectorCodec.prepare(raw, for: .cosine, field: "vector") else {
                        throw StorageError("episode \(id): stored vector does not match its dims or has no direction")
                    }
                    vectors.put(ns: row[2], id: id, rev: row[0], model: row[3], vector: v)
                }
            }
        } catch let error as StorageError {
            throw error
        } catch {
            throw StorageError("cannot load episode vectors: \(error)")
        }
        if vectors.count > 0 {
            logger.info("episode vectors loaded", metadata: [
                "vectors": "\(vectors.count)", "ms": "\((time.monotonicNs() - started) / 1_000_000)",
            ])
        }
    }

    /// Whether any of the records `revs` has an embedding.
    func anyEmbedded(_ revs: [Int64]) throws(WireError) -> Bool {
        guard !revs.isEmpty else { return false }
        let list = revs.map(String.init).joined(separator: ",")
        return try store.read { db in
            try Bool.fetchOne(db, sql: "SELECT 1 FROM episode_vectors WHERE rev IN (\(list)) LIMIT 1") ?? false
        }
    }
}
