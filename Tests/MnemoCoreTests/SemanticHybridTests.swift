import Foundation
@testable import MnemoCore
import MnemoProtocol
import Testing

/// A fixture embedding text with the hash embedder, named explicitly (the daemon's default
/// embedder is not what these tests are about).
private func textFixture(defaultMode: SearchMode = .hybrid, embedder: any Embedder = HashEmbedder()) throws -> SemanticFixture {
    var settings = SemanticSettings()
    settings.embedder = embedder
    settings.defaultMode = defaultMode
    return try SemanticFixture(volatile: true, settings: settings)
}

/// Upserts a text fact (embedded by the store's embedder).
@discardableResult
private func putText(_ f: SemanticFixture, _ ns: String, _ id: String, _ text: String, tags: [String] = [],
                     supersedes: String? = nil, ttlMs: Int64? = nil, by caller: Caller = alice) throws -> SemanticStore.UpsertResult {
    var u = SemanticStore.Upsert(ns: ns, text: text)
    u.id = id
    u.tags = tags
    u.supersedes = supersedes
    u.ttlMs = ttlMs
    return try f.store.upsert(u, by: caller)
}

private func search(_ f: SemanticFixture, _ prefix: String, _ text: String, k: Int = 10, mode: SearchMode? = nil,
                    fusion: RankFusion.Method = .minmax, filter: SearchFilter = SearchFilter(),
                    visible: (@Sendable (String) -> Bool)? = nil) throws -> SemanticStore.SearchResult {
    var q = SemanticStore.Query(prefix: prefix, vector: nil, text: text, k: k, filter: filter, mode: mode, fusion: fusion)
    q.visible = visible
    return try f.store.search(q)
}

/// An embedder that reports texts longer than 40 bytes as truncated.
private struct CuttingEmbedder: Embedder {
    let inner = HashEmbedder()
    var model: String { inner.model }
    var dims: Int { inner.dims }
    func embed(_ texts: [String], field: String) throws(WireError) -> [Embedding] {
        try inner.embed(texts, field: field).enumerated().map { i, e in Embedding(vector: e.vector, truncated: texts[i].utf8.count > 40) }
    }
}

@Suite("Semantic memory: keyword and hybrid search")
struct SemanticHybridTests {
    @Test("the keyword arm matches any word, ranks by BM25 and covers a namespace prefix by whole segments")
    func keywordByPrefix() throws {
        let f = try textFixture()
        try putText(f, "wf/1", "both", "The staging database is reset every night")
        try putText(f, "wf/1/a", "one", "Database backups are kept for a week")
        try putText(f, "wf/1/a/deep", "deep", "the staging cluster runs on spot instances")
        try putText(f, "wf/12", "sibling", "The staging database is reset every night")
        try putText(f, "other", "far", "The staging database is reset every night")
        try putText(f, "wf/1", "none", "Alice owns the billing service")
        let r = try search(f, "wf/1", "when is the staging database reset?", mode: .keyword)
        // Any word (OR): the facts sharing only "database", "staging" or even "the" are
        // found too; the one sharing most (and rarest) words comes first; wf/12 and other
        // are outside the prefix.
        #expect(r.hits.map(\.record.id).first == "both")
        #expect(Set(r.hits.map(\.record.id)) == ["both", "one", "deep", "none"])
        #expect(!r.hits.contains { $0.record.ns == "wf/12" || $0.record.ns == "other" })
        for (i, h) in r.hits.enumerated() {
            #expect(h.match.keyword?.rank == i + 1)
            #expect(h.match.keyword?.score == h.score)
            #expect(h.match.vector == nil && h.match.fused == nil)
            #expect(h.score > 0)  // -bm25
        }
        for w in zip(r.hits, r.hits.dropFirst()) { #expect(w.0.score >= w.1.score) }
        #expect(r.skipped.isEmpty)
        // A deeper prefix narrows; a prefix that is not a whole segment finds nothing.
        #expect(Set(try search(f, "wf/1/a", "staging database", mode: .keyword).hits.map(\.record.id)) == ["one", "deep"])
        #expect(try search(f, "wf/1/a/d", "staging", mode: .keyword).hits.isEmpty)
        // FTS5 syntax in the text is words, never an error.
        #expect(try search(f, "wf", "NEAR( \"staging* OR", mode: .keyword).hits.count >= 1)
    }

    @Test("the keyword arm reads every collection under the prefix, whatever its dims or model")
    func keywordIgnoresModel() throws {
        let f = try textFixture()
        try f.put("kb/vec", "v", [1, 0, 0], text: "the nightly reset of staging")
        try putText(f, "kb/text", "t", "staging is reset at night")
        let r = try search(f, "kb", "staging reset", mode: .keyword)
        #expect(Set(r.hits.map(\.record.id)) == ["v", "t"])
        let h = try search(f, "kb", "staging reset", mode: .hybrid)
        #expect(Set(h.hits.map(\.record.id)) == ["v", "t"])
        #expect(h.skipped == ["kb/vec"])  // left out by the vector arm only
        #expect(h.hits.first { $0.record.id == "v" }?.match.vector == nil)
    }

    @Test("filters (tags, agent, since, superseded, expired, visibility) apply to both arms alike")
    func filtersInBothArms() throws {
        let f = try textFixture()
        try putText(f, "kb/a", "old", "alpha fact one", tags: ["x"])
        f.time.advance(ms: 1000)
        let mid = f.time.nowMs()
        try putText(f, "kb/a", "tagged", "alpha fact two", tags: ["x", "y"], by: bob)
        try putText(f, "kb/a", "replaced", "alpha fact three", tags: ["y"])
        try putText(f, "kb/a", "replacement", "alpha fact four", tags: ["y"], supersedes: "replaced")
        try putText(f, "kb/b", "short", "alpha fact five", tags: ["x"], ttlMs: 500)
        try putText(f, "kb/b", "plain", "alpha fact six")
        f.time.advance(ms: 600)  // "short" expired
        func ids(_ mode: SearchMode, _ filter: SearchFilter, visible: (@Sendable (String) -> Bool)? = nil) throws -> Set<String> {
            Set(try search(f, "kb", "alpha", k: 50, mode: mode, filter: filter, visible: visible).hits.map(\.record.id))
        }
        var cases: [(SearchFilter, (@Sendable (String) -> Bool)?, Set<String>)] = []
        cases.append((SearchFilter(), nil, ["old", "tagged", "replacement", "plain"]))
        var tags = SearchFilter()
        tags.tags = ["x"]
        cases.append((tags, nil, ["old", "tagged"]))
        tags.tags = ["x", "y"]
        cases.append((tags, nil, ["tagged"]))
        var agent = SearchFilter()
        agent.agent = "b"
        cases.append((agent, nil, ["tagged"]))
        var since = SearchFilter()
        since.since = mid
        cases.append((since, nil, ["tagged", "replacement", "plain"]))
        var superseded = SearchFilter()
        superseded.includeSuperseded = true
        cases.append((superseded, nil, ["old", "tagged", "replaced", "replacement", "plain"]))
        cases.append((SearchFilter(), { $0 == "kb/b" }, ["plain"]))
        for (filter, visible, expected) in cases {
            #expect(try ids(.vector, filter, visible: visible) == expected)
            #expect(try ids(.keyword, filter, visible: visible) == expected)
            #expect(try ids(.hybrid, filter, visible: visible) == expected)
        }
        // min_score bars the vector arm only.
        var bar = SearchFilter()
        bar.minScore = 0.9999
        #expect(try ids(.vector, bar).isEmpty)
        #expect(try ids(.keyword, bar) == ["old", "tagged", "replacement", "plain"])
    }

    @Test("hybrid fuses the two arms by reciprocal rank and explains every hit")
    func fusionOrderAndExplanation() throws {
        let f = try textFixture()
        let texts = [
            "the staging database is reset every night",
            "staging databases get reset nightly by cron",
            "resetting the database wipes staging",
            "billing runs on the first of the month",
            "night shift owns the pager",
            "alice resets her password every month",
            "the database of record is postgres",
            "staging mirrors production weekly",
        ]
        for (i, t) in texts.enumerated() { try putText(f, "kb/\(i % 2)", "t\(i)", t) }
        let question = "when is the staging database reset"
        let k = 5
        let depth = RankFusion.armDepth(for: k)
        let vector = try search(f, "kb", question, k: depth, mode: .vector).hits
        let keyword = try search(f, "kb", question, k: depth, mode: .keyword).hits
        let hybrid = try search(f, "kb", question, k: k, mode: .hybrid)
        let key = { (h: SemanticHit) in SemanticStore.RecordKey(ns: h.record.ns, id: h.record.id, version: h.record.version) }
        for fusion in RankFusion.Method.allCases {
            let hybrid = try search(f, "kb", question, k: k, mode: .hybrid, fusion: fusion)
            let expected = RankFusion.fuse(vector: vector.map { (key: key($0), score: $0.score) },
                                           keyword: keyword.map { (key: key($0), score: $0.score) }, method: fusion, limit: k)
            #expect(hybrid.hits.map(key) == expected.map(\.key))
            #expect(hybrid.hits.first?.record.id == "t0")
            for (h, e) in zip(hybrid.hits, expected) {
                #expect(h.score == e.score)
                #expect(h.match.fused == e.score)
                #expect(h.match.vector?.rank == e.ranks[0])
                #expect(h.match.keyword?.rank == e.ranks[1])
                if let r = e.ranks[0] { #expect(h.match.vector?.score == vector[r - 1].score) }
                if let r = e.ranks[1] { #expect(h.match.keyword?.score == keyword[r - 1].score) }
                let sum: Double
                switch fusion {
                case .rrf:
                    sum = (e.ranks[0].map { 1 / Double(60 + $0) } ?? 0) + (e.ranks[1].map { 1 / Double(60 + $0) } ?? 0)
                case .minmax:
                    func scaled(_ list: [SemanticHit], _ rank: Int?) -> Double {
                        guard let rank, let hi = list.first?.score, let lo = list.last?.score else { return 0 }
                        return hi > lo ? (list[rank - 1].score - lo) / (hi - lo) : 1
                    }
                    sum = 0.8 * scaled(vector, e.ranks[0]) + 0.2 * scaled(keyword, e.ranks[1])
                }
                #expect(abs(h.score - sum) < 1e-12)
            }
        }
        // The same query twice gives the same order (ties are deterministic).
        #expect(try search(f, "kb", question, k: k, mode: .hybrid).hits.map(key) == hybrid.hits.map(key))
        // Vector mode explains the vector arm only.
        let v = try search(f, "kb", question, k: 3, mode: .vector).hits
        #expect(v.enumerated().allSatisfy { i, h in h.match.vector?.rank == i + 1 && h.match.vector?.score == h.score && h.match.keyword == nil })
    }

    @Test("the default mode for text comes from the settings; a client vector always searches by vector")
    func defaultMode() throws {
        let f = try textFixture(defaultMode: .keyword)
        try putText(f, "kb", "a", "deploys happen on tuesdays")
        let text = try search(f, "kb", "deploys")
        #expect(text.hits.first?.match.keyword != nil && text.hits.first?.match.vector == nil)
        let g = try textFixture()
        try putText(g, "kb", "a", "deploys happen on tuesdays")
        let hybrid = try search(g, "kb", "deploys")
        #expect(hybrid.hits.first?.match.fused != nil)
        try g.put("vec", "v", [1, 0])
        let byVector = try g.store.search(SemanticStore.Query(prefix: "vec", vector: [1, 0], text: nil, k: 1))
        #expect(byVector.hits.first?.match.vector?.rank == 1 && byVector.hits.first?.match.fused == nil)
    }

    @Test("keyword and hybrid need text; a client vector takes vector mode only (-32602 naming mode)")
    func modeErrors() throws {
        let f = try textFixture()
        try f.put("kb", "a", [1, 0])
        for mode in [SearchMode.keyword, .hybrid] {
            let e = #expect(throws: WireError.self) {
                try f.store.search(SemanticStore.Query(prefix: "kb", vector: [1, 0], text: nil, k: 1, mode: mode))
            }
            #expect(e?.code == -32602)
            #expect(e?.detail("field") == .string("mode"))
            let none = #expect(throws: WireError.self) {
                try f.store.search(SemanticStore.Query(prefix: "kb", vector: nil, text: nil, k: 1, mode: mode))
            }
            #expect(none?.detail("field") == .string("mode"))
        }
        #expect(try f.store.search(SemanticStore.Query(prefix: "kb", vector: [1, 0], text: nil, k: 1, mode: .vector)).hits.count == 1)
        // Text with no searchable word: the keyword arm finds nothing (no error).
        #expect(try search(f, "kb", "?!", mode: .keyword).hits.isEmpty)
    }

    @Test("several searches of several modes at once answer like each alone")
    func batchOfModes() throws {
        let f = try textFixture()
        for i in 0..<40 { try putText(f, "kb/\(i % 3)", "r\(i)", "fact number \(i) about \(["staging", "billing", "pager"][i % 3]) things") }
        let queries = [SearchMode.vector, .keyword, .hybrid, .hybrid].enumerated().map { i, mode in
            SemanticStore.Query(prefix: "kb", vector: nil, text: ["staging things", "billing", "pager number 7", "fact 12"][i], k: 4, mode: mode)
        }
        let together = f.store.search(queries)
        for (q, r) in zip(queries, together) {
            let alone = try f.store.search(q)
            let batch = try r.get()
            #expect(batch.hits.map(\.record.id) == alone.hits.map(\.record.id))
            // The same ranks; vector scores agree to float rounding (sgemm against sgemv).
            #expect(batch.hits.map { [$0.match.vector?.rank, $0.match.keyword?.rank] } == alone.hits.map { [$0.match.vector?.rank, $0.match.keyword?.rank] })
            for (a, b) in zip(batch.hits, alone.hits) {
                #expect(abs((a.match.vector?.score ?? 0) - (b.match.vector?.score ?? 0)) < 1e-5)
                #expect(a.match.keyword?.score == b.match.keyword?.score)
                // The fused score scales the vector scores: the same float rounding.
                #expect(abs((a.match.fused ?? 0) - (b.match.fused ?? 0)) < 1e-5)
            }
        }
    }

    @Test("truncated reports a text the embedder cut, in search and upsert")
    func truncated() throws {
        let f = try textFixture(embedder: CuttingEmbedder())
        let long = try putText(f, "kb", "long", "a rather long fact text that the model has to cut short")
        #expect(long.truncated)
        #expect(try putText(f, "kb", "short", "a short fact").truncated == false)
        #expect(try search(f, "kb", "a rather long question that the model has to cut too").truncated)
        #expect(try search(f, "kb", "short question").truncated == false)
        #expect(try search(f, "kb", "a rather long question that the keyword arm never embeds", mode: .keyword).truncated == false)
    }
}
