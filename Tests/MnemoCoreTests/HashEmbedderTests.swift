import MnemoCore
import MnemoProtocol
import Testing

@Suite("Semantic memory: hashing embedder")
struct HashEmbedderTests {
    func cosine(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }

    @Test("ranks an obvious paraphrase above unrelated text")
    func paraphrase() throws {
        let e = HashEmbedder()
        let q = try e.embed("The deploy failed because the database migration timed out")
        let para = try e.embed("database migration timeout made the deployment fail")
        let unrelated = try e.embed("User prefers dark mode and vim key bindings")
        #expect(cosine(q, para) > cosine(q, unrelated) + 0.2)
    }

    @Test("is deterministic, unit length and case-insensitive")
    func deterministic() throws {
        let e = HashEmbedder(dims: 64)
        let a = try e.embed("Hello, World")
        #expect(a == (try e.embed("hello world")))
        #expect(a.count == 64)
        #expect(abs(cosine(a, a) - 1) < 1e-5)
    }

    @Test("text without letters or digits is refused")
    func empty() {
        #expect(throws: WireError.self) { try HashEmbedder().embed(" ,.;!? ") }
    }

    @Test("end to end through the store: a paraphrase query finds its fact first")
    func storeRanking() throws {
        let f = try SemanticFixture(volatile: true)
        for text in ["The cache is invalidated on every deploy", "Alice owns the billing service",
                     "Tests must pass before merging", "The staging database is reset nightly"] {
            _ = try f.store.upsert(SemanticStore.Upsert(ns: "kb", text: text), by: alice)
        }
        let r = try f.store.search(SemanticStore.Query(prefix: "kb", vector: nil, text: "who owns billing?", k: 2))
        #expect(r.hits.first?.record.text == "Alice owns the billing service")
    }
}
