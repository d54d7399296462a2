import Foundation
import GRDB
@testable import MnemoCore
import MnemoProtocol
import Testing

/// Facts that know when they were true: validity, versions, `as_of`, conflicts.
@Suite("Semantic memory: validity, versions and conflicts")
struct SemanticValidityTests {
    static let day: Int64 = 86_400_000

    /// Upserts `text` with a vector and optional validity, supersession and conflict handling.
    @discardableResult
    static func put(_ f: SemanticFixture, _ ns: String, _ id: String?, _ vector: [Float], text: String,
                    from: Int64? = nil, to: Int64? = nil, supersedes: String? = nil,
                    onConflict: SemanticStore.OnConflict? = nil) throws -> SemanticStore.UpsertResult {
        var u = SemanticStore.Upsert(ns: ns, text: text)
        u.id = id
        u.vector = vector
        u.validFrom = from
        u.validTo = to
        u.supersedes = supersedes
        u.onConflict = onConflict
        return try f.store.upsert(u, by: alice)
    }

    static func texts(_ f: SemanticFixture, _ vector: [Float], asOf: Int64? = nil, history: Bool = false,
                      mode: SearchMode? = nil, text: String? = nil) throws -> [String] {
        var filter = SearchFilter()
        filter.asOf = asOf
        filter.includeHistory = history
        let q = SemanticStore.Query(prefix: "kb", vector: text == nil ? vector : nil, text: text, k: 10, filter: filter, mode: mode)
        return try f.store.search(q).hits.map(\.record.text)
    }

    @Test("as_of after a chain of three supersessions answers what was valid then, by vector, keyword and get")
    func chainOfSupersessions() throws {
        let f = try SemanticFixture()
        let t0 = f.time.nowMs()
        let v: [Float] = [1, 0.1, 0]
        try Self.put(f, "kb", "a", v, text: "the deploy window is monday", from: t0)
        try Self.put(f, "kb", "b", v, text: "the deploy window is tuesday", from: t0 + Self.day, supersedes: "a")
        try Self.put(f, "kb", "c", v, text: "the deploy window is wednesday", from: t0 + 2 * Self.day, supersedes: "b")
        try Self.put(f, "kb", "d", v, text: "the deploy window is thursday", from: t0 + 3 * Self.day, supersedes: "c")
        // Now: only the last is believed; each superseded one closed where its successor began.
        #expect(try Self.texts(f, v) == ["the deploy window is thursday"])
        #expect(f.store.get(ns: "kb", id: "a")?.validTo == t0 + Self.day)
        #expect(f.store.get(ns: "kb", id: "c")?.validTo == t0 + 3 * Self.day)
        let expected = ["monday", "tuesday", "wednesday", "thursday"]
        for (i, day) in expected.enumerated() {
            let t = t0 + Int64(i) * Self.day + Self.day / 2
            #expect(try Self.texts(f, v, asOf: t) == ["the deploy window is \(day)"], "as_of day \(i)")
            #expect(try Self.texts(f, v, asOf: t, mode: .keyword, text: "deploy window") == ["the deploy window is \(day)"])
            #expect(try Self.texts(f, v, asOf: t, mode: .hybrid, text: "deploy window") == ["the deploy window is \(day)"])
            let id = ["a", "b", "c", "d"][i]
            #expect(try f.store.get(ns: "kb", id: id, asOf: t)?.text == "the deploy window is \(day)")
            #expect(try f.store.get(ns: "kb", id: id, asOf: t + Self.day) == nil || i == 3)
        }
        // Before anything was valid: nothing.
        #expect(try Self.texts(f, v, asOf: t0 - 1) == [])
        // The same after a restart.
        let g = try f.reopen()
        #expect(try Self.texts(g, v, asOf: t0 + Self.day + 1) == ["the deploy window is tuesday"])
    }

    @Test("a record written again keeps its past versions: history, get and search as_of, include_history")
    func versionsOfOneRecord() throws {
        let f = try SemanticFixture()
        let t0 = f.time.nowMs()
        let v: [Float] = [0, 1, 0]
        let first = try Self.put(f, "kb", "owner", v, text: "alice owns billing")
        f.time.advance(ms: Self.day)
        let second = try Self.put(f, "kb", "owner", v, text: "bob owns billing")
        f.time.advance(ms: Self.day)
        let third = try Self.put(f, "kb", "owner", v, text: "carol owns billing")
        let history = try #require(try f.store.history(ns: "kb", id: "owner"))
        #expect(history.map(\.text) == ["carol owns billing", "bob owns billing", "alice owns billing"])
        #expect(history.map(\.version) == [third.version, second.version, first.version])
        #expect(history.map(\.isCurrent) == [true, false, false])
        #expect(history[1].validFrom == t0 + Self.day && history[1].validTo == t0 + 2 * Self.day)
        #expect(history[2].validTo == t0 + Self.day)
        #expect(try f.store.get(ns: "kb", id: "owner", asOf: t0 + 1)?.text == "alice owns billing")
        #expect(try f.store.get(ns: "kb", id: "owner", asOf: t0 + Self.day)?.text == "bob owns billing")
        #expect(try f.store.get(ns: "kb", id: "owner", asOf: t0 - 1) == nil)
        // Default search: the live version only; as_of: the one believed then; history: all.
        #expect(try Self.texts(f, v) == ["carol owns billing"])
        #expect(try Self.texts(f, v, asOf: t0 + 1) == ["alice owns billing"])
        #expect(Set(try Self.texts(f, v, history: true)) == ["alice owns billing", "bob owns billing", "carol owns billing"])
        #expect(try Self.texts(f, v, asOf: t0 + Self.day + 1, mode: .keyword, text: "billing") == ["bob owns billing"])
        #expect(Set(try Self.texts(f, v, history: true, mode: .keyword, text: "owns")).count == 3)
        #expect(try Self.texts(f, v, mode: .keyword, text: "alice") == [])
        // A restart keeps the versions; deleting the record forgets them.
        let g = try f.reopen()
        #expect(try g.store.history(ns: "kb", id: "owner")?.count == 3)
        #expect(try g.store.delete(ns: "kb", id: "owner") != nil)
        #expect(try g.store.history(ns: "kb", id: "owner") == nil)
        #expect(try Self.texts(g, v, history: true, mode: .keyword, text: "owns") == [])
        let left = try g.store.db.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM fact_versions") }
        #expect(left == 0)
    }

    @Test("max_fact_versions keeps the newest versions; 0 keeps none")
    func versionLimit() throws {
        var limits = Limits()
        limits.maxFactVersions = 2
        let f = try SemanticFixture(limits: limits)
        for i in 1...5 {
            try Self.put(f, "kb", "x", [1, 0, 0], text: "version \(i)")
            f.time.advance(ms: 1000)
        }
        #expect(try f.store.history(ns: "kb", id: "x")?.map(\.text) == ["version 5", "version 4", "version 3"])
        // The pruned versions left the keyword index too.
        #expect(try Self.texts(f, [1, 0, 0], history: true, mode: .keyword, text: "version").count == 3)
        limits.maxFactVersions = 0
        let g = try SemanticFixture(limits: limits)
        try Self.put(g, "kb", "x", [1, 0, 0], text: "one")
        try Self.put(g, "kb", "x", [1, 0, 0], text: "two")
        #expect(try g.store.history(ns: "kb", id: "x")?.map(\.text) == ["two"])
    }

    @Test("valid_from and valid_to given by the client: ended facts leave the default search, as_of finds them")
    func clientValidity() throws {
        let f = try SemanticFixture()
        let now = f.time.nowMs()
        try Self.put(f, "kb", "old", [1, 0, 0], text: "the office is in Leeds", from: now - 10 * Self.day, to: now - Self.day)
        try Self.put(f, "kb", "new", [1, 0.1, 0], text: "the office is in York", from: now - Self.day)
        #expect(try Self.texts(f, [1, 0, 0]) == ["the office is in York"])
        #expect(try Self.texts(f, [1, 0, 0], asOf: now - 5 * Self.day) == ["the office is in Leeds"])
        var filter = SearchFilter()
        filter.includeSuperseded = true
        #expect(try f.ids("kb", [1, 0, 0], filter: filter) == ["old", "new"])
        let r = try #require(f.store.get(ns: "kb", id: "old"))
        #expect(r.validFrom == now - 10 * Self.day && r.validTo == now - Self.day && r.provenance.at == now)
        // valid_to must come after valid_from: refused, nothing written.
        #expect(throws: WireError.self) { try Self.put(f, "kb", "bad", [1, 0, 0], text: "x", from: now, to: now) }
        #expect(f.store.get(ns: "kb", id: "bad") == nil)
    }

    @Test("a correction valid from the same time leaves the old version valid at no time")
    func correction() throws {
        let f = try SemanticFixture()
        let t0 = f.time.nowMs() - Self.day
        try Self.put(f, "kb", "cap", [1, 0, 0], text: "the limit is 10 GB", from: t0)
        try Self.put(f, "kb", "cap", [1, 0, 0], text: "the limit is 100 GB", from: t0)
        #expect(try f.store.get(ns: "kb", id: "cap", asOf: t0)?.text == "the limit is 100 GB")
        let past = try #require(try f.store.history(ns: "kb", id: "cap")?.last)
        #expect(past.validFrom == t0 && past.validTo == t0)
    }

    @Test("on_conflict: a near-duplicate with other text is named; reject, supersede and keep_both decide")
    func conflicts() throws {
        let f = try SemanticFixture()
        let v: [Float] = [1, 0, 0]
        try Self.put(f, "kb", "port", v, text: "the API listens on port 8080")
        // The default is today's: no scan, nothing named, both kept.
        let plain = try Self.put(f, "kb", nil, v, text: "the API listens on port 9090")
        #expect(plain.similar == nil && plain.conflicts == nil)
        try f.store.delete(ns: "kb", id: plain.id)
        // reject: CONFLICT naming the record; nothing applied.
        do {
            try Self.put(f, "kb", "p2", v, text: "the API listens on port 9090", onConflict: .reject)
            Issue.record("a conflicting upsert with on_conflict reject was applied")
        } catch let error as WireError {
            #expect(error.data.first { $0.key == "code" }?.value == .string("CONFLICT"))
            #expect(error.message.contains("port"))
        }
        #expect(f.store.get(ns: "kb", id: "p2") == nil)
        // The same statement (case and spaces aside) is no conflict.
        let same = try Self.put(f, "kb", "p3", v, text: "The API  listens on port 8080", onConflict: .reject)
        #expect(same.similar?.map(\.id) == ["port"] && same.conflicts?.isEmpty == true)
        try f.store.delete(ns: "kb", id: "p3")
        // keep_both: stored beside it, the conflict reported.
        let both = try Self.put(f, "kb", "p4", v, text: "the API listens on port 7070", onConflict: .keepBoth)
        #expect(both.conflicts?.map(\.id) == ["port"] && both.superseded == nil)
        #expect(f.store.get(ns: "kb", id: "port")?.supersededBy == nil)
        try f.store.delete(ns: "kb", id: "p4")
        // supersede: the best conflict is superseded and its validity closed.
        f.time.advance(ms: 5000)
        let sup = try Self.put(f, "kb", "p5", v, text: "the API listens on port 9090", onConflict: .supersede)
        #expect(sup.superseded == "port")
        let old = try #require(f.store.get(ns: "kb", id: "port"))
        #expect(old.supersededBy == "p5" && old.validTo == f.time.nowMs())
        #expect(try f.ids("kb", v) == ["p5"])
    }

    @Test("v4 closes the validity of facts superseded before it, at their superseder's recorded time")
    func migrationBackfill() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mnemo-sem-v3-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        do {
            let queue = try SemanticMigrationTests.database(in: dir, upTo: "v3", maxRev: 2)
            try queue.write { db in
                try db.execute(sql: "INSERT INTO collections VALUES ('kb', 3, 'cosine', 'client')")
                for (id, sup, rev, at) in [("a", "b", Int64(1), Int64(1000)), ("b", nil, 2, 5000)] as [(String, String?, Int64, Int64)] {
                    try db.execute(sql: """
                        INSERT INTO facts (ns, id, text, data, tags, confidence, superseded_by, expires_at, version,
                                           agent, principal, uid, pid, at, vector, nskey)
                        VALUES ('kb', ?, ?, NULL, '[]', NULL, ?, NULL, ?, 'a', 'local', 1, 2, ?, ?, ?)
                        """, arguments: [id, "fact \(id)", sup, rev, at, VectorCodec.bytes([1, 0, 0]), FTSQuery.subtreeKeys("kb")])
                }
                try db.execute(sql: "INSERT INTO facts_fts(facts_fts) VALUES ('rebuild')")
            }
        }
        let f = try SemanticFixture(dir: dir, startRev: 2)
        let a = try #require(f.store.get(ns: "kb", id: "a"))
        #expect(a.validFrom == 1000 && a.validTo == 5000)
        #expect(f.store.get(ns: "kb", id: "b")?.validTo == nil)
        #expect(try f.store.get(ns: "kb", id: "a", asOf: 2000)?.text == "fact a")
        #expect(try Self.texts(f, [1, 0, 0], mode: .keyword, text: "fact") == ["fact b"])
    }
}
