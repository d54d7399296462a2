import MnemoCore
import MnemoProtocol
import Testing

@Suite("episodic search: FTS5 any-word BM25 under a prefix, visibility, hostile text")
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

    @Test func ranksByBM25AndMatchesAnyWordUnderThePrefix() throws {
        let ep = try corpus()
        let hits = try ep.search(ns: "kb", text: "sqlite", limit: 10, mode: .keyword).hits
        // kb and kb/other (whole segments), never kb2; the most "sqlite" first.
        #expect(Set(hits.map(\.record.id)) == ["ep_1", "ep_2", "ep_3", "ep_5"] && hits.first?.record.id == "ep_3")
        #expect(hits.map(\.score) == hits.map(\.score).sorted(by: >))
        #expect(hits.allSatisfy { $0.score > 0 && $0.match.keyword?.score == $0.score && $0.match.vector == nil })
        #expect(hits.map { $0.match.keyword?.rank } == Array(1...hits.count))
        #expect(hits.first { $0.record.id == "ep_5" }?.record.ns == "kb/other", "hits carry their namespace")
        #expect(try ep.ids("kb", "sqlite", limit: 1) == ["ep_3"])
        #expect(try ep.ids("kb", "kubernetes").isEmpty)
        #expect(try ep.ids("kb/other", "sqlite") == ["ep_5"])
        #expect(try ep.ids("kb2", "sqlite") == ["ep_6"])
        #expect(try ep.ids("k", "sqlite").isEmpty, "a prefix is whole segments")
        // Any word: a paraphrase sharing one word still finds the record; records holding
        // more of the words rank first.
        #expect(try ep.ids("kb", "postgres or redis").sorted() == ["ep_2", "ep_4"])
        #expect(try ep.ids("kb", "checkpoint wal sqlite").first == "ep_3")
        #expect(try ep.ids("kb", "wal sqlite").sorted() == ["ep_1", "ep_2", "ep_3", "ep_5"])
    }

    @Test func recordsOfNamespacesTheCallerCannotReadAreNeverReturned() throws {
        let ep = try corpus()
        let notOther: @Sendable (String) -> Bool = { $0 != "kb/other" }
        #expect(try ep.ids("kb", "sqlite", visible: notOther).sorted() == ["ep_1", "ep_2", "ep_3"])
        // The hidden best hits do not make a page short.
        let onlyOther: @Sendable (String) -> Bool = { $0 == "kb/other" }
        #expect(try ep.ids("kb", "sqlite", limit: 1, visible: onlyOther) == ["ep_5"])
        #expect(try ep.ids("kb", "sqlite", visible: { _ in false }).isEmpty)
        for mode in SearchMode.allCases {
            let ids = try ep.ids("kb", "sqlite wal", mode: mode, visible: notOther)
            #expect(!ids.contains("ep_5") && !ids.contains("ep_6"), "\(mode)")
        }
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
        for mode in SearchMode.allCases where mode != .vector {
            _ = try ep.search(ns: "kb", text: text, limit: 10, mode: mode)
        }
        #expect(try ep.all("kb").count == 5, "kb and kb/other")
    }

    @Test func aNULSeparatesWords() throws {
        let ep = try corpus()
        #expect(try ep.ids("kb", "wal\u{0}sqlite") == ep.ids("kb", "wal sqlite"))
        #expect(FTSQuery.terms("a\u{0}b") == ["\"a\"", "\"b\""])
    }

    @Test func operatorsArePlainWords() throws {
        let ep = try corpus()
        // "AND", "NOT" are words, not operators: no record has them, so they add nothing.
        #expect(try ep.ids("kb", "AND").isEmpty && ep.ids("kb", "NOT").isEmpty)
        #expect(try ep.ids("kb", "sqlite AND wal") == ep.ids("kb", "sqlite wal"))
        #expect(try ep.ids("kb", "NOT sqlite") == ep.ids("kb", "sqlite"))
        // Punctuation-only words are dropped; quotes inside a word are kept as text.
        #expect(try ep.ids("kb", "sqlite * ((").count == 4)
        #expect(try ep.ids("kb", "\"sqlite\"").count == 4)
        #expect(try ep.ids("kb", "*** ((").isEmpty)
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
        #expect(FTSQuery.matchAny(text: "x y", column: "content", prefix: "wf/4.a") == "nskey : \"77662F342E61\" AND content : (\"x\" OR \"y\")")
        #expect(FTSQuery.subtreeKeys("wf/4.a/b") == "7766 77662F342E61 77662F342E612F62")
        #expect(FTSQuery.subtreeKeys("wf") == "7766")
        #expect(FTSQuery.matchAny(text: "*", column: "content", prefix: "wf") == nil)
    }
}
