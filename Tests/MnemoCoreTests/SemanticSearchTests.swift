import Foundation
@testable import MnemoCore
import MnemoProtocol
import Testing

@Suite("Semantic memory: exact search")
struct SemanticSearchTests {
    @Test("top-k equals a brute-force reference on random data, for every metric", arguments: Metric.allCases)
    func exactness(metric: Metric) throws {
        var settings = SemanticSettings()
        settings.metric = metric
        let f = try SemanticFixture(volatile: true, settings: settings)
        var gen = VectorGenerator(seed: 42)
        let rows = (0..<1500).map { i in (id: "r\(i)", v: gen.vector(24)) }
        for row in rows { try f.put("bench/x", row.id, row.v) }
        for _ in 0..<10 {
            let q = gen.vector(24)
            #expect(try f.ids("bench", q, k: 10) == referenceTopK(rows, q, k: 10, metric: metric))
        }
    }

    @Test("exact across BLAS blocks, with tombstones and after compaction (one and several queries)")
    func exactnessAcrossBlocks() throws {
        // 4096 scores of scratch: blocks of 4096 rows for one query, 1024 for four.
        let c = VectorCollection(ns: "kb", dims: 8, metric: .dot, model: "client", scratchFloats: 4096)
        var gen = VectorGenerator(seed: 11)
        var rows: [(id: String, v: [Float])] = []
        let prov = Provenance(caller: alice, at: 0, rev: 1)
        for i in 0..<10_000 {
            let v = gen.vector(8)
            let r = SemanticRecord(id: "r\(i)", ns: "kb", text: "", data: nil, tags: [], confidence: nil, supersededBy: nil,
                                   expiresAt: nil, version: 1, provenance: prov)
            c.put(r, prepared: v)
            rows.append((r.id, v))
        }
        // Remove every third row: tombstones in both blocks.
        for i in stride(from: 0, to: rows.count, by: 3) { c.remove(rows[i].id) }
        let live = rows.enumerated().filter { $0.offset % 3 != 0 }.map(\.element)
        let queries = (0..<4).map { _ in gen.vector(8) }
        func check() {
            var tops = queries.map { _ in TopK<SemanticRecord>(k: 7) }
            c.search(queries, filter: SearchFilter(), now: 0, into: &tops)
            for (q, top) in zip(queries, tops) {
                #expect(top.sorted().map(\.item.id) == referenceTopK(live, q, k: 7, metric: .dot))
                var one = [TopK<SemanticRecord>(k: 7)]
                c.search([q], filter: SearchFilter(), now: 0, into: &one)
                #expect(one[0].sorted().map(\.item.id) == referenceTopK(live, q, k: 7, metric: .dot))
            }
        }
        check()
        #expect(c.needsCompaction)
        c.compact()
        #expect(c.count == live.count)
        check()
    }

    @Test("several queries at once (sgemm) give the same hits and scores as one at a time (sgemv)")
    func batchEqualsSingle() throws {
        let f = try SemanticFixture(volatile: true)
        var gen = VectorGenerator(seed: 7)
        for i in 0..<3000 { try f.put("kb", "r\(i)", gen.vector(16)) }
        let queries = (0..<8).map { _ in SemanticStore.Query(prefix: "kb", vector: gen.vector(16), text: nil, k: 5) }
        let together = f.store.search(queries)
        for (q, r) in zip(queries, together) {
            let alone = try f.store.search(q)
            let batch = try r.get()
            #expect(batch.hits.map(\.record.id) == alone.hits.map(\.record.id))
            for (a, b) in zip(batch.hits, alone.hits) { #expect(abs(a.score - b.score) < 1e-5) }
        }
    }

    @Test("filters apply inside the scan: k hits come back whenever k records match")
    func filtersInsideScan() throws {
        let f = try SemanticFixture(volatile: true)
        var gen = VectorGenerator(seed: 3)
        let q = gen.vector(8)
        // 500 near-identical records without the tag, 12 far ones with it.
        for i in 0..<500 { try f.put("kb", "near\(i)", q.map { $0 + 0.001 * Float(i % 7) }) }
        for i in 0..<12 { try f.put("kb", "tagged\(i)", gen.vector(8), tags: ["keep"], by: i % 2 == 0 ? alice : bob) }
        var filter = SearchFilter()
        filter.tags = ["keep"]
        let hits = try f.ids("kb", q, k: 10, filter: filter)
        #expect(hits.count == 10)
        #expect(hits.allSatisfy { $0.hasPrefix("tagged") })
        filter.agent = "b"
        #expect(try f.ids("kb", q, k: 10, filter: filter).count == 6)
    }

    @Test("since, min_score and TTL filter hits")
    func sinceMinScoreTTL() throws {
        let f = try SemanticFixture(volatile: true)
        try f.put("kb", "old", [1, 0, 0])
        f.time.advance(ms: 1000)
        let mid = f.time.nowMs()
        try f.put("kb", "new", [0.9, 0.1, 0])
        try f.put("kb", "short", [0.8, 0.2, 0], ttlMs: 500)
        try f.put("kb", "far", [0, 0, 1])
        var filter = SearchFilter()
        filter.since = mid
        #expect(try f.ids("kb", [1, 0, 0], filter: filter) == ["new", "short", "far"])
        filter = SearchFilter()
        filter.minScore = 0.5
        #expect(try f.ids("kb", [1, 0, 0], filter: filter) == ["old", "new", "short"])
        f.time.advance(ms: 500)
        #expect(try f.ids("kb", [1, 0, 0], filter: filter) == ["old", "new"])
        #expect(f.store.get(ns: "kb", id: "short") == nil)
        #expect(try f.store.maintain() == 1)
        #expect(f.store.count == 3)
    }

    @Test("a prefix covers whole segments and skips collections of other dims or models")
    func prefixAndSkipped() throws {
        let f = try SemanticFixture(volatile: true)
        try f.put("wf/4", "a", [1, 0])
        try f.put("wf/4/x", "b", [1, 0.1])
        try f.put("wf/42", "c", [1, 0])
        try f.put("wf/4/y", "d", [1, 0, 0])
        let r = try f.store.search(SemanticStore.Query(prefix: "wf/4", vector: [1, 0], text: nil, k: 10))
        #expect(r.hits.map(\.record.id) == ["a", "b"])
        #expect(r.skipped == ["wf/4/y"])
        let t = try f.store.search(SemanticStore.Query(prefix: "wf", vector: nil, text: "hello", k: 10))
        #expect(t.hits.isEmpty)
        #expect(t.skipped == ["wf/4", "wf/4/x", "wf/4/y", "wf/42"])
    }

    @Test("bad queries are refused")
    func badQueries() throws {
        let f = try SemanticFixture(volatile: true)
        try f.put("kb", "a", [1, 0])
        #expect(throws: WireError.self) { try f.ids("kb", [0, 0]) }
        #expect(throws: WireError.self) { try f.ids("kb", [1, 0], k: 0) }
        #expect(throws: WireError.self) { try f.ids("kb", [1, 0], k: 1001) }
        #expect(throws: WireError.self) { try f.store.search(SemanticStore.Query(prefix: "kb", vector: nil, text: "!!!", k: 1)) }
    }

    @Test("searches run while records are written: every hit is a whole record")
    func concurrentSearchAndUpsert() async throws {
        let f = try SemanticFixture(volatile: true)
        var gen = VectorGenerator(seed: 9)
        for i in 0..<2000 { try f.put("kb", "seed\(i)", gen.vector(32)) }
        let store = f.store
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                var g = VectorGenerator(seed: 10)
                for i in 0..<1500 {
                    var u = SemanticStore.Upsert(ns: "kb", text: "w\(i)")
                    u.id = "w\(i % 300)"  // replacements too
                    u.vector = g.vector(32)
                    _ = try store.upsert(u, by: alice)
                }
            }
            for t in 0..<2 {
                group.addTask {
                    var g = VectorGenerator(seed: 100 + UInt64(t))
                    for _ in 0..<200 {
                        let r = try store.search(SemanticStore.Query(prefix: "kb", vector: g.vector(32), text: nil, k: 20))
                        #expect(r.hits.count == 20)
                        #expect(Set(r.hits.map(\.record.id)).count == 20)
                        for w in zip(r.hits, r.hits.dropFirst()) { #expect(w.0.score >= w.1.score) }
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(f.store.count == 2300)
    }
}
