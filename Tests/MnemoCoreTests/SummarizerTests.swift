import MnemoCore
import MnemoProtocol
import Testing

@Suite("summarizer: built-in output, external command, fallback", .serialized)
struct SummarizerTests {
    /// Five records over four minutes, by two agents (clock starts at 2027-01-15T08:00:00Z).
    func fixture(_ summarizer: Summarizer = Summarizer()) throws -> (EpisodeStore, [EpisodeRecord]) {
        let (ep, time) = try makeEpisodes(summarizer: summarizer)
        let rows: [(String, String, Caller, [String])] = [
            ("plan", "Plan: migrate the cache to SQLite and measure latency", alice, []),
            ("observation", "cache latency p99 is 12 ms before migration", bob, []),
            ("error", "migration failed: disk full on the cache volume", alice, []),
            ("note", "retried after cleanup", bob, ["retry"]),
            ("outcome", "migration succeeded; cache latency p99 is 3 ms", alice, []),
        ]
        for (i, (kind, content, who, tags)) in rows.enumerated() {
            if i > 0 { time.advance(ms: 60_000) }
            try ep.add("proj/cache", content, kind: kind, tags: tags, by: who)
        }
        return (ep, try ep.all("proj/cache"))
    }

    @Test func builtinSummaryIsExactAndDeterministic() throws {
        let (_, records) = try fixture()
        let draft = BuiltinSummarizer.summarize(ns: "proj/cache", records: records)
        #expect(draft.content == """
            5 records in proj/cache from 2027-01-15T08:00:00.000Z to 2027-01-15T08:04:00.000Z (rev 1..5).
            Agents: a 3, b 2.
            Kinds: error 1, note 1, observation 1, outcome 1, plan 1.
            First: [plan] Plan: migrate the cache to SQLite and measure latency (ep_1)
            Last: [outcome] migration succeeded; cache latency p99 is 3 ms (ep_5)
            Failures and outcomes:
            - [error] migration failed: disk full on the cache volume (ep_3)
            - [outcome] migration succeeded; cache latency p99 is 3 ms (ep_5)
            Frequent terms: cache 4, latency 3, migration 3, p99 2, cleanup 1, disk 1, failed 1, full 1.
            """)
        #expect(draft.data.text == """
            {"count":5,"from":"2027-01-15T08:00:00.000Z","until":"2027-01-15T08:04:00.000Z","first_rev":1,"last_rev":5,\
            "agents":{"a":3,"b":2},"kinds":{"error":1,"note":1,"observation":1,"outcome":1,"plan":1},"first":"ep_1",\
            "last":"ep_5","failures_and_outcomes":["ep_3","ep_5"],"terms":["cache","latency","migration","p99","cleanup",\
            "disk","failed","full"],"summarizer":"builtin"}
            """)
        // Order of the input does not matter.
        #expect(BuiltinSummarizer.summarize(ns: "proj/cache", records: records.reversed()) == draft)
    }

    @Test func summarizeStoresTheBuiltinSummary() throws {
        let (ep, records) = try fixture()
        let r = try ep.summarize(ns: "proj/cache", olderThanMs: nil, maxRecords: 100, by: alice)
        #expect(r.summaries.first?.content == BuiltinSummarizer.summarize(ns: "proj/cache", records: records).content)
    }

    @Test func externalCommandWritesTheSummaryFromStdin() throws {
        // The command reads the JSON and answers with its record count, proving it got the input.
        let script = "n=$(grep -o '\"id\":' | wc -l); echo \"external: $n records\""
        let (ep, _) = try fixture(Summarizer(command: ["/bin/sh", "-c", script], timeoutMs: 5000))
        let r = try ep.summarize(ns: "proj/cache", olderThanMs: nil, maxRecords: 100, by: alice)
        #expect(r.summaries.first?.content == "external: 5 records")
        #expect(r.summaries.first?.data.flatMap { try? JSONParser.parse($0) }?["summarizer"] == "external")
        #expect(ep.stats.externalSummarizerFailures == 0)
    }

    @Test(arguments: [["/bin/false"], ["/nonexistent/summarizer"], ["/bin/sh", "-c", "cat >/dev/null"], ["/bin/sleep", "5"]])
    func aFailingCommandFallsBackToTheBuiltinOne(command: [String]) throws {
        let (ep, records) = try fixture(Summarizer(command: command, timeoutMs: 300))
        let r = try ep.summarize(ns: "proj/cache", olderThanMs: nil, maxRecords: 100, by: alice)
        #expect(r.summaries.first?.content == BuiltinSummarizer.summarize(ns: "proj/cache", records: records).content)
        #expect(r.summarized == 5)
        #expect(ep.stats.externalSummarizerFailures == 1)
    }
}
