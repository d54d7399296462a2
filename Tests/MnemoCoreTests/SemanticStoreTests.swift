import Foundation
import MnemoCore
import MnemoProtocol
import Testing

@Suite("Semantic memory: records")
struct SemanticStoreTests {
    @Test("supersedes hides the old record from search by default and keeps the link")
    func supersede() throws {
        let f = try SemanticFixture(volatile: true)
        try f.put("kb", "v1", [1, 0], text: "deploys on Fridays")
        let r = try f.put("kb", "v2", [0.9, 0.1], text: "no deploys on Fridays", supersedes: "v1")
        #expect(r.id == "v2")
        #expect(try f.ids("kb", [1, 0]) == ["v2"])
        var filter = SearchFilter()
        filter.includeSuperseded = true
        #expect(try f.ids("kb", [1, 0], filter: filter) == ["v1", "v2"])
        #expect(f.store.get(ns: "kb", id: "v1")?.supersededBy == "v2")
        let missing = #expect(throws: WireError.self) { try f.put("kb", "v3", [1, 1], supersedes: "nope") }
        #expect(missing?.appCode == .notFound)
        #expect(f.store.get(ns: "kb", id: "v3") == nil)
        #expect(throws: WireError.self) { try f.put("kb", "v4", [1, 1], supersedes: "v4") }
    }

    @Test("dedupe report lists near-duplicates in similar; dedupe merge updates the existing record")
    func dedupe() throws {
        let f = try SemanticFixture(volatile: true)
        try f.put("kb", nil, [1, 0, 0], text: "user prefers dark mode", tags: ["ui"])
        let plain = try f.put("kb", nil, [0.99, 0.01, 0], text: "the user likes dark mode", dedupe: .report)
        #expect(plain.similar?.map(\.id) == ["f-1"])
        #expect(plain.merged == nil)
        #expect(f.store.count == 2)
        let merged = try f.put("kb", nil, [1, 0.001, 0], text: "dark mode, please", tags: ["pref"], dedupe: .merge)
        #expect(merged.merged == true)
        #expect(f.store.count == 2)
        let record = try #require(f.store.get(ns: "kb", id: merged.id))
        #expect(record.text == "dark mode, please")
        #expect(Set(record.tags).isSuperset(of: ["pref"]))
        let fresh = try f.put("kb", nil, [0, 0, 1], text: "unrelated", dedupe: .merge)
        #expect(fresh.merged == false)
        #expect(fresh.similar?.isEmpty == true)
        #expect(f.store.count == 3)
    }

    @Test("a vector of other dims is DIMENSION_MISMATCH and nothing is applied")
    func dimensionMismatch() throws {
        let f = try SemanticFixture(volatile: true)
        try f.put("kb", "a", [1, 0, 0])
        let e = #expect(throws: WireError.self) { try f.put("kb", "b", [1, 0]) }
        #expect(e?.appCode == .dimensionMismatch)
        // The embedder's 384-dim vectors of model mnemo-hash-v1 do not fit either.
        var u = SemanticStore.Upsert(ns: "kb", text: "some words")
        u.id = "c"
        let e2 = #expect(throws: WireError.self) { try f.store.upsert(u, by: alice) }
        #expect(e2?.appCode == .dimensionMismatch)
        #expect(f.store.count == 1)
    }

    @Test("bad vectors and texts are refused before anything is stored")
    func badInput() throws {
        let f = try SemanticFixture(volatile: true)
        #expect(throws: WireError.self) { try f.put("kb", "z", [0, 0]) }  // zero vector, cosine
        #expect(throws: WireError.self) { try VectorCodec.decode(numbers: [.number("1"), .number("1e39")], field: "vector", maxDims: 8) }
        #expect(throws: WireError.self) { try VectorCodec.decode(base64: "AAAA", field: "vector_b64", maxDims: 8) }  // 3 bytes
        #expect(throws: WireError.self) { try VectorCodec.decode(base64: "AADAfw==", field: "vector_b64", maxDims: 8) }  // NaN
        #expect(throws: WireError.self) { try VectorCodec.decode(base64: "not base64!", field: "vector_b64", maxDims: 8) }
        #expect(throws: WireError.self) { try VectorCodec.decode(numbers: Array(repeating: .number("1"), count: 9), field: "vector", maxDims: 8) }
        var u = SemanticStore.Upsert(ns: "kb", text: "...")
        #expect(throws: WireError.self) { try f.store.upsert(u, by: alice) }  // nothing to embed
        u.text = String(repeating: "a", count: 65 << 10)
        #expect(throws: WireError.self) { try f.store.upsert(u, by: alice) }
        #expect(f.store.count == 0)
        #expect(f.store.collectionCount == 0)
    }

    @Test("base64 little-endian float32 round-trips bit-exactly")
    func base64RoundTrip() throws {
        let v: [Float] = [1, -2.5, 0.1, .leastNonzeroMagnitude, 3.4e38]
        let b64 = VectorCodec.bytes(v).base64EncodedString()
        #expect(try VectorCodec.decode(base64: b64, field: "v", maxDims: 8) == v)
    }

    @Test("max_semantic_records refuses new records but allows replacing existing ones")
    func recordLimit() throws {
        var limits = Limits()
        try limits.set("max_semantic_records", to: 2)
        let f = try SemanticFixture(volatile: true, limits: limits)
        try f.put("kb", "a", [1, 0])
        try f.put("kb", "b", [0, 1])
        let e = #expect(throws: WireError.self) { try f.put("kb", "c", [1, 1]) }
        #expect(e?.appCode == .limitExceeded)
        try f.put("kb", "a", [1, 1])
        #expect(f.store.count == 2)
    }

    @Test("delete removes a record; deleting an absent one reports false")
    func delete() throws {
        let f = try SemanticFixture(volatile: true)
        try f.put("kb", "a", [1, 0])
        #expect(try f.store.delete(ns: "kb", id: "a") != nil)
        #expect(try f.store.delete(ns: "kb", id: "a") == nil)
        #expect(try f.ids("kb", [1, 0]).isEmpty)
    }

    @Test("a restart returns identical search results and keeps the highest revision")
    func restart() throws {
        let f = try SemanticFixture()
        var gen = VectorGenerator(seed: 5)
        for i in 0..<500 { try f.put("kb/\(i % 3)", "r\(i)", gen.vector(12), tags: i % 2 == 0 ? ["even"] : []) }
        try f.put("kb/0", "r0", gen.vector(12))  // a replacement
        try f.put("kb/1", "new", gen.vector(12), supersedes: "r1")
        _ = try f.store.delete(ns: "kb/2", id: "r2")
        let queries = (0..<5).map { _ in gen.vector(12) }
        let before = try queries.map { q in try f.store.search(SemanticStore.Query(prefix: "kb", vector: q, text: nil, k: 15)).hits }
        let maxRev = f.revisions.value
        let g = try f.reopen()
        #expect(g.store.db.maxRevAtOpen == maxRev)
        #expect(g.store.count == f.store.count)
        let after = try queries.map { q in try g.store.search(SemanticStore.Query(prefix: "kb", vector: q, text: nil, k: 15)).hits }
        for (a, b) in zip(before, after) {
            #expect(a.map(\.record) == b.map(\.record))
            #expect(a.map(\.score) == b.map(\.score))
        }
    }
}
