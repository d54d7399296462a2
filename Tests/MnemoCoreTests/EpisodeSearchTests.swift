import MnemoCore
import MnemoProtocol
import Testing

@Suite("episodic search: FTS5, BM25, hostile text")
struct EpisodeSearchTests {
    func corpus() throws -> EpisodeStore {
        let (ep, _) = try makeEpisodes()
        try ep.add("kb", "sqlite wal mode makes readers concurrent with the writer")  // ep_1
        try ep.add("kb", "postgres uses mvcc; sqlite is embedded")  // ep_2
        try ep.add("kb", "sqlite sqlite sqlite: the wal file grows until a checkpoint")  // ep_3
        try ep.add("kb", "redis keeps everything in memory")  // ep_4
        try ep.add("kb/other", "sqlite wal everywhere")  // ep_5: another namespace
        try ep.add("kb2", "sqlite wal too")  // ep_6
        return ep
    }

    @Test func ranksByBM25AndMatchesAllWordsInOneNamespace() throws {
        let ep = try corpus()
        let hits = try ep.search(ns: "kb", text: "sqlite", limit: 10)
        #expect(hits.map(\.record.id) == ["ep_3", "ep_2", "ep_1"])
        #expect(hits.map(\.score) == hits.map(\.score).sorted(by: >))
        #expect(hits.allSatisfy { $0.score > 0 })
        #expect(try ep.search(ns: "kb", text: "WAL sqlite", limit: 10).map(\.record.id) == ["ep_3", "ep_1"])
        #expect(try ep.search(ns: "kb", text: "sqlite", limit: 1).map(\.record.id) == ["ep_3"])
        #expect(try ep.search(ns: "kb", text: "kubernetes", limit: 10).isEmpty)
        #expect(try ep.search(ns: "kb/other", text: "sqlite", limit: 10).map(\.record.id) == ["ep_5"])
        #expect(try ep.search(ns: "kb2", text: "sqlite", limit: 10).map(\.record.id) == ["ep_6"])
    }

    @Test(arguments: [
        "\"", "\"sqlite", "sqlite\"", "AND", "sqlite AND", "OR sqlite", "NOT", "*", "sqlite*", "NEAR(", "NEAR(sqlite wal",
        "((", "sqlite)", "(sqlite", "^sqlite", "content:sqlite", "ns : kb", "{content}: x", "-sqlite", "+", "\u{0}",
        "''", "sqlite \" wal", "🙂 sqlite", "   ", "a\"\"b", "NEAR(sqlite, 2)", "sqlite -- ;DROP TABLE episodes",
        // A NUL inside a word ended FTS5's query there: "unterminated string", as INTERNAL
        // (found by the wire fuzzer). A NUL with a combining mark is one Character.
        "sqlite\u{0}", "\u{0}sqlite", "a\u{0}b", "wal \u{0}\u{301}sqlite", "\"sqlite\u{0}\"",
    ])
    func hostileTextIsNeverAnFTSSyntaxError(text: String) throws {
        let ep = try corpus()
        _ = try ep.search(ns: "kb", text: text, limit: 10)
        #expect(try ep.all("kb").count == 5, "kb and kb/other")
    }

    @Test func aNULSeparatesWords() throws {
        let ep = try corpus()
        #expect(try ep.search(ns: "kb", text: "wal\u{0}sqlite", limit: 10).map(\.record.id) == ["ep_3", "ep_1"])
        #expect(FTSQuery.terms("a\u{0}b") == ["\"a\"", "\"b\""])
    }

    @Test func operatorsArePlainWords() throws {
        let ep = try corpus()
        // "AND" is a word that must appear, not an operator: no record has "and".
        #expect(try ep.search(ns: "kb", text: "sqlite AND wal", limit: 10).isEmpty)
        // Punctuation-only words are dropped; quotes inside a word are kept as text.
        #expect(try ep.search(ns: "kb", text: "sqlite * ((", limit: 10).count == 3)
        #expect(try ep.search(ns: "kb", text: "\"sqlite\"", limit: 10).count == 3)
        #expect(try ep.search(ns: "kb", text: "*** ((", limit: 10).isEmpty)
    }

    @Test func badSearchArgumentsNameTheField() throws {
        let ep = try corpus()
        #expect(wireError { () throws(WireError) in try ep.search(ns: "kb", text: "", limit: 10) }?.detail("field") == "text")
        #expect(wireError { () throws(WireError) in try ep.search(ns: "kb", text: String(repeating: "a", count: 1025), limit: 10) }?.detail("field") == "text")
        #expect(wireError { () throws(WireError) in try ep.search(ns: "kb", text: "a", limit: 0) }?.detail("field") == "limit")
        #expect(wireError { () throws(WireError) in try ep.search(ns: "k b", text: "a", limit: 1) }?.detail("field") == "ns")
    }

    @Test func ftsQueryQuotesEveryWord() {
        #expect(FTSQuery.terms("a \"b\" NEAR( ** c*") == ["\"a\"", "\"\"\"b\"\"\"", "\"NEAR(\"", "\"c*\""])
        #expect(FTSQuery.match(text: "x y", ns: "wf/4.a") == "nskey : \"77662F342E61\" AND content : (\"x\" AND \"y\")")
        #expect(FTSQuery.match(text: "*", ns: "wf") == nil)
    }
}
