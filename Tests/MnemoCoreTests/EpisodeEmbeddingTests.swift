import Foundation
import GRDB
import MnemoCore
import MnemoProtocol
import Testing

@Suite("episodic embeddings: embed flag, per-prefix policy, vector and hybrid search, consistency")
struct EpisodeEmbeddingTests {
    /// Rows of `episode_vectors`.
    func storedVectors(_ ep: EpisodeStore) throws -> Int {
        try ep.store.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM episode_vectors") ?? 0 }
    }

    @Test func embedTrueStoresOneVectorAndOnlyEmbeddedRecordsAreVectorCandidates() throws {
        let (ep, _) = try makeEpisodes()
        let a = try ep.add("ops/db", "the staging database is reset every night", embed: true)
        let b = try ep.add("ops/db", "the staging database is reset every night")  // same text, no vector
        try ep.add("ops/web", "the web tier caches pages for an hour", embed: true)
        #expect(a.embedded && !a.truncated && !b.embedded)
        #expect(try storedVectors(ep) == 2 && ep.stats.vectors == 2)
        let r = try ep.search(ns: "ops", text: "when is the staging database reset", limit: 10, mode: .vector)
        #expect(r.hits.map(\.record.id) == [a.id, "ep_3"] && r.skipped.isEmpty)
        let top = try #require(r.hits.first)
        #expect(top.record.ns == "ops/db" && top.score > 0.5 && top.score <= 1)
        #expect(top.match.vector == SearchMatch.Arm(rank: 1, score: top.score) && top.match.keyword == nil && top.match.fused == nil)
        // The keyword arm sees both copies.
        #expect(Set(try ep.ids("ops", "staging", mode: .keyword)) == [a.id, b.id])
        #expect(try ep.ids("ops/web", "staging database", mode: .vector) == ["ep_3"], "the prefix bounds the vector arm")
    }

    @Test func hybridFusesBothArmsByScoreOrByReciprocalRank() throws {
        let (ep, _) = try makeEpisodes()
        let both = try ep.add("kb", "nightly backup of the orders database failed", embed: true)
        let keywordOnly = try ep.add("kb", "orders database migrated to a new host")  // no vector
        let vectorOnly = try ep.add("kb", "backups failing every night", embed: true)
        let r = try ep.search(ns: "kb", text: "nightly backup failed", limit: 10, mode: .hybrid)
        let byID = Dictionary(uniqueKeysWithValues: r.hits.map { ($0.record.id, $0) })
        let top = try #require(r.hits.first)
        #expect(top.record.id == both.id && top.match.vector?.rank == 1 && top.match.keyword?.rank == 1)
        // First in both arms: the top of each min-max scale, weights 0.8 + 0.2.
        #expect(abs(top.score - 1.0) < 1e-12 && top.match.fused == top.score)
        let rrf = try ep.search(ns: "kb", text: "nightly backup failed", limit: 10, mode: .hybrid, fusion: .rrf)
        #expect(rrf.hits.first?.record.id == both.id && rrf.hits.first?.score == 2.0 / 61)
        #expect(byID[vectorOnly.id]?.match.vector != nil && byID[vectorOnly.id]?.match.keyword == nil)
        #expect(byID[keywordOnly.id] == nil, "shares no word with the query and has no vector")
        #expect(r.hits.map(\.score) == r.hits.map(\.score).sorted(by: >))
        // A text with nothing to embed leaves only the keyword arm (empty too here), never an error.
        #expect(try ep.search(ns: "kb", text: "***", limit: 10, mode: .hybrid).hits.isEmpty)
        let e = wireError { () throws(WireError) in try ep.search(ns: "kb", text: "***", limit: 10, mode: .vector) }
        #expect(e?.code == -32602 && e?.detail("field") == "text")
    }

    @Test func theDefaultModeIsHybridUnlessConfigured() throws {
        let (ep, _) = try makeEpisodes()
        try ep.add("kb", "alpha beta", embed: true)
        let r = try ep.search(ns: "kb", text: "alpha", limit: 5)
        #expect(r.mode == .hybrid && r.hits.first?.match.fused != nil)
        let (keyword, _) = try makeEpisodes(settings: EpisodicSettings(searchMode: .keyword))
        try keyword.add("kb", "alpha beta", embed: true)
        #expect(try keyword.search(ns: "kb", text: "alpha", limit: 5).mode == .keyword)
    }

    @Test func aPolicyEmbedsEveryRecordUnderItsPrefix() throws {
        let (ep, _) = try makeEpisodes(settings: EpisodicSettings(embedPrefixes: ["wf"]))
        #expect(try ep.add("wf", "planned the release").embedded)
        #expect(try ep.add("wf/7/log", "tests passed on linux").embedded)
        #expect(try !ep.add("wfx", "not under wf").embedded, "whole segments")
        #expect(try !ep.add("other", "not under wf").embedded)
        #expect(try ep.add("other", "asked for", embed: true).embedded)
        // Nothing to embed: stored without a vector under a policy, refused when asked for.
        #expect(try !ep.add("wf/7", "!!! ---").embedded)
        let e = wireError { () throws(WireError) in try ep.add("other", "?!", embed: true) }
        #expect(e?.code == -32602 && e?.detail("field") == "content")
        #expect(try storedVectors(ep) == 3 && ep.stats.records == 6)
        #expect(EpisodicSettings(embedPrefixes: [""]).embeds("any/thing"))
    }

    @Test func anOverLongContentIsTruncatedByTheEmbedderAndTheReplySaysSo() throws {
        let embedder = TestEmbedder(maxCharacters: 20)
        let (ep, _) = try makeEpisodes(embedder: embedder)
        let long = try ep.add("kb", "a rather long account of what the agent did today", embed: true)
        let short = try ep.add("kb", "short note", embed: true)
        #expect(long.embedded && long.truncated && short.embedded && !short.truncated)
        let replay = try ep.append(.init(ns: "kb", kind: "note", content: "another long text that will not fit", idempotencyKey: "k",
                                         embed: true), by: alice)
        let again = try ep.append(.init(ns: "kb", kind: "note", content: "another long text that will not fit", idempotencyKey: "k",
                                        embed: true), by: alice)
        #expect(again.replayed && again.truncated && again.embedded && again.id == replay.id)
    }

    @Test func anEmbedderFailureAppliesNothing() throws {
        let embedder = TestEmbedder()
        let (ep, _) = try makeEpisodes(embedder: embedder, settings: EpisodicSettings(embedPrefixes: ["wf"]))
        embedder.fail(true)
        for (ns, embed) in [("kb", true), ("wf/1", false)] {
            let e = wireError { () throws(WireError) in try ep.add(ns, "the deploy went fine", embed: embed) }
            #expect(e?.appCode == .unavailable)
        }
        #expect(try ep.all("kb").isEmpty && ep.all("wf").isEmpty && storedVectors(ep) == 0 && ep.stats.records == 0)
        #expect(try !ep.add("kb", "not asked, not under a policy").embedded, "appends that embed nothing still work")
        // Nothing under kb has a vector: hybrid search does not embed the query (keyword
        // recall needs no model); vector search does, and fails.
        #expect(try ep.search(ns: "kb", text: "asked", limit: 5, mode: .hybrid).hits.count == 1)
        let e = wireError { () throws(WireError) in try ep.search(ns: "kb", text: "deploy", limit: 5, mode: .vector) }
        #expect(e?.appCode == .unavailable)
        embedder.fail(false)
        #expect(try ep.add("wf/1", "the deploy went fine").embedded)
        #expect(try (ep.all("kb") + ep.all("wf")).map(\.rev) == [1, 2], "the failed appends took no revision")
        let (none, _) = try makeEpisodes(embedder: nil)
        #expect(wireError { () throws(WireError) in try none.add("kb", "x y", embed: true) }?.appCode == .unavailable)
    }

    @Test func anIdempotentRetryIsNotEmbeddedAgainNorStoredTwice() throws {
        let embedder = TestEmbedder()
        let (ep, _) = try makeEpisodes(embedder: embedder)
        let first = try ep.add("kb", "deploy started", key: "k1", embed: true)
        #expect(embedder.calls == 1)
        let again = try ep.add("kb", "deploy started", key: "k1", embed: true)
        let noFlag = try ep.add("kb", "deploy started", key: "k1")
        #expect(embedder.calls == 1, "a retry is answered from the first append")
        #expect(again.replayed && again.id == first.id && again.embedded && noFlag.replayed && noFlag.embedded)
        #expect(try storedVectors(ep) == 1 && ep.stats.vectors == 1)
        // A retry of an append made without a vector stays without one.
        let plain = try ep.add("kb", "plain", key: "k2")
        #expect(try !ep.add("kb", "plain", key: "k2", embed: true).embedded && plain.replayed == false)
        #expect(try storedVectors(ep) == 1)
    }

    @Test func pruningDeletesTheVectorsInTheSameCommitAndFromMemory() throws {
        let (ep, _) = try makeEpisodes(settings: EpisodicSettings(embedPrefixes: ["run"]))
        for i in 0..<6 { try ep.add("run/1", "step \(i) of the backup job") }
        _ = try ep.pin(ids: ["ep_2"], pinned: true)
        #expect(try storedVectors(ep) == 6)
        let r = try ep.prune(RetentionPolicy(ns: "run", maxCount: 1), dryRun: false, requestedBy: "test")
        #expect(r.deleted == 4)
        #expect(try storedVectors(ep) == 2 && ep.stats.vectors == 2)
        let left = try ep.ids("run", "backup job step", mode: .vector)
        #expect(left.sorted() == ["ep_2", "ep_6"], "only the pinned and the newest are left, in memory too")
        #expect(try ep.prune(RetentionPolicy(ns: "run", maxCount: 0, keepPinned: false), dryRun: false, requestedBy: "test").deleted == 2)
        #expect(try storedVectors(ep) == 0 && ep.stats.vectors == 0 && ep.ids("run", "backup", mode: .vector).isEmpty)
    }

    @Test func summariesAreEmbeddedWhenTheirNamespaceIs() throws {
        let (ep, _) = try makeEpisodes(settings: EpisodicSettings(embedPrefixes: ["pol"]))
        for i in 0..<3 {
            try ep.add("pol/a", "deploy \(i) failed on the database")
            try ep.add("asked", "deploy \(i) failed on the database", embed: i == 1)
            try ep.add("plain", "deploy \(i) failed on the database")
        }
        let embedded = try ["pol/a", "asked", "plain"].map { ns in
            try ep.summarize(ns: ns, olderThanMs: nil, maxRecords: 10, by: alice).summaries.map(\.id)
        }
        let vectorHits = Set(try ["pol", "asked", "plain"].flatMap { try ep.ids($0, "deploy failed database summary", limit: 100, mode: .vector) })
        #expect(vectorHits.contains(embedded[0][0]) && vectorHits.contains(embedded[1][0]))
        #expect(!vectorHits.contains(embedded[2][0]), "no source of plain has a vector, no policy covers it")
    }

    @Test func aRestartReloadsTheVectorsAndOtherModelsAreSkippedAndNamed() throws {
        let fixture = try EpisodeFixture(embedder: TestEmbedder(model: "m1"))
        try fixture.store.add("kb/a", "the cache was cold after the deploy", embed: true)
        try fixture.store.add("kb/a", "disk full on the build host", embed: true)
        let before = try fixture.store.search(ns: "kb", text: "cold cache", limit: 5, mode: .vector)
        let again = try fixture.reopen(embedder: TestEmbedder(model: "m1"))
        let after = try again.store.search(ns: "kb", text: "cold cache", limit: 5, mode: .vector)
        #expect(after == before && after.hits.count == 2 && again.store.stats.vectors == 2)
        // Another model: its records are not compared with the query's, and named.
        let other = try again.reopen(embedder: TestEmbedder(model: "m2"))
        try other.store.add("kb/b", "the cache was cold after the deploy", embed: true)
        let mixed = try other.store.search(ns: "kb", text: "cold cache", limit: 5, mode: .vector)
        #expect(mixed.hits.map(\.record.ns) == ["kb/b"] && mixed.skipped == ["kb/a"])
        #expect(try other.store.search(ns: "kb", text: "cold cache", limit: 5, mode: .keyword).skipped.isEmpty)
    }

    @Test func theMigrationIndexesExistingRowsUnderEveryAncestor() throws {
        // A store written by the version-1 schema (nskey: one token, the namespace's own)
        // is migrated: its rows are found under every prefix afterwards.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mnemo-ep-v1-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let db = try DatabaseQueue(path: dir + "/episodic.sqlite")
        var v1 = DatabaseMigrator()
        v1.registerMigration("mnemo_meta") { db in
            try db.execute(sql: "CREATE TABLE mnemo_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) STRICT")
            try db.execute(sql: "INSERT INTO mnemo_meta VALUES ('max_rev', 7)")
        }
        try v1.migrate(db)
        var episodic = DatabaseMigrator()
        episodic.registerMigration("episodic_v1") { db in try db.execute(sql: EpisodeSchemaV1.sql) }
        try episodic.migrate(db)
        try db.write { db in
            try db.execute(sql: """
                INSERT INTO episodes (rev, id, ns, kind, content, tags, at, agent, principal, uid, pid)
                VALUES (7, 'ep_7', 'wf/1/log', 'note', 'old sqlite record', '[]', 0, 'a', 'local', 1, 2)
                """)
        }
        try db.close()
        let fixture = try EpisodeFixture(dir: dir, startRev: 7)
        for prefix in ["wf", "wf/1", "wf/1/log"] {
            #expect(try fixture.store.ids(prefix, "sqlite") == ["ep_7"], "\(prefix)")
        }
        try fixture.store.add("wf/2", "new sqlite record")
        #expect(try fixture.store.ids("wf", "sqlite").count == 2)
    }
}
