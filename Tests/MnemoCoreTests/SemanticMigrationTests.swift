import Foundation
import GRDB
@testable import MnemoCore
import MnemoProtocol
import Testing

@Suite("Semantic memory: schema migrations")
struct SemanticMigrationTests {
    @Test("v2 backfills the keyword index of a v1 database, keeps its records and indexes new ones")
    func backfillV1() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mnemo-sem-v1-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A database as the v1 schema wrote it.
        do {
            let queue = try Self.database(in: dir, upTo: "v1", maxRev: 3)
            try queue.write { db in
                try db.execute(sql: "INSERT INTO collections VALUES ('wf/1', 3, 'cosine', 'client')")
                try db.execute(sql: "INSERT INTO collections VALUES ('wf/2', 3, 'cosine', 'client')")
                let facts: [(String, String, String, Int64)] = [
                    ("wf/1", "a", "the staging database is reset every night", 1),
                    ("wf/1", "b", "billing runs monthly", 2),
                    ("wf/2", "c", "staging has its own database", 3),
                ]
                for (ns, id, text, rev) in facts {
                    try db.execute(sql: """
                        INSERT INTO facts (ns, id, text, data, tags, confidence, superseded_by, expires_at, version,
                                           agent, principal, uid, pid, at, vector)
                        VALUES (?, ?, ?, NULL, '[]', NULL, NULL, NULL, ?, 'a', 'local', 1, 2, 0, ?)
                        """, arguments: [ns, id, text, rev, VectorCodec.bytes([1, Float(rev), 0])])
                }
            }
        }
        let f = try SemanticFixture(dir: dir, startRev: 3)
        #expect(f.store.count == 3)
        func keyword(_ prefix: String, _ text: String) throws -> [String] {
            try f.store.search(SemanticStore.Query(prefix: prefix, vector: nil, text: text, k: 10, mode: .keyword)).hits.map(\.record.id)
        }
        #expect(try keyword("wf", "staging database") == ["a", "c"] || keyword("wf", "staging database") == ["c", "a"])
        #expect(try keyword("wf/1", "staging database") == ["a"])
        #expect(try keyword("wf/2", "billing") == [])
        // The vector search is unchanged; new, replaced and deleted records keep the index in step.
        #expect(try f.ids("wf", [1, 3, 0], k: 1) == ["c"])
        try f.put("wf/2", "d", [0, 1, 1], text: "billing moved to staging")
        try f.put("wf/1", "a", [1, 1, 1], text: "the pager rotates weekly")  // replaces a
        _ = try f.store.delete(ns: "wf/1", id: "b")
        #expect(Set(try keyword("wf", "staging billing database")) == ["c", "d"])
        #expect(try keyword("wf", "pager") == ["a"])
        // And after a restart.
        let g = try f.reopen()
        #expect(Set(try g.store.search(SemanticStore.Query(prefix: "wf", vector: nil, text: "staging pager", k: 10, mode: .keyword))
            .hits.map(\.record.id)) == ["a", "c", "d"])
    }

    /// `dir/semantic.sqlite` as the schema up to `migration` wrote it, with its `max_rev`,
    /// for the caller to fill before a store opens (and migrates) it.
    static func database(in dir: String, upTo migration: String, maxRev: Int64) throws -> DatabaseQueue {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let queue = try DatabaseQueue(path: dir + "/semantic.sqlite")
        var meta = DatabaseMigrator()
        meta.registerMigration("mnemo_meta") { db in
            try db.execute(sql: "CREATE TABLE mnemo_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) STRICT")
            try db.execute(sql: "INSERT INTO mnemo_meta VALUES ('max_rev', ?)", arguments: [maxRev])
        }
        try meta.migrate(queue)
        try SemanticStore.migrator.migrate(queue, upTo: migration)
        return queue
    }
}
