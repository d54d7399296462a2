import MnemoCore
import MnemoProtocol
import Testing

@Suite("episodic jobs: summarize, prune, retention, deletion log")
struct EpisodeRetentionTests {
    @Test func summarizeMarksSourcesAndTracesEachOne() throws {
        let (ep, time) = try makeEpisodes()
        for i in 0..<5 { try ep.add("wf/1", "step \(i)") }
        time.advance(ms: 10_000)
        try ep.add("wf/1", "recent")
        try ep.add("wf/1/child", "not this namespace")
        let r = try ep.summarize(ns: "wf/1", olderThanMs: 5_000, maxRecords: 1000, by: bob)
        #expect(r.summarized == 5 && r.summaries.count == 1)
        let s = try #require(r.summaries.first)
        #expect(s.kind == "summary" && s.ns == "wf/1" && s.derivedFrom == (1...5).map { "ep_\($0)" })
        #expect(s.provenance.derivedFrom == s.derivedFrom && s.provenance.agent == "b")
        let all = try ep.query(EpisodeQuery(ns: "wf/1")).records.filter { $0.ns == "wf/1" }
        #expect(all.filter(\.summarized).map(\.id) == s.derivedFrom, "sources are marked, not lost")
        // Nothing left that qualifies; summaries are not summarized again.
        #expect(try ep.summarize(ns: "wf/1", olderThanMs: 5_000, maxRecords: 1000, by: bob).summarized == 0)
        let rest = try ep.summarize(ns: "wf/1", olderThanMs: nil, maxRecords: 1000, by: bob)
        #expect(rest.summarized == 1 && rest.summaries.first?.derivedFrom == ["ep_6"])
    }

    @Test func summarizeSplitsLargeRunsAndRespectsMaxRecords() throws {
        let (ep, _) = try makeEpisodes()
        for i in 0..<600 { try ep.add("big", "event \(i)") }
        let r = try ep.summarize(ns: "big", olderThanMs: nil, maxRecords: 520, by: alice)
        #expect(r.summarized == 520)
        #expect(r.summaries.map(\.derivedFrom.count) == [256, 256, 8])
        #expect(wireError { () throws(WireError) in try ep.summarize(ns: "big", olderThanMs: nil, maxRecords: 0, by: alice) }?.detail("field") == "max_records")
        #expect(wireError { () throws(WireError) in try ep.summarize(ns: "big", olderThanMs: 0, maxRecords: 1, by: alice) }?.detail("field") == "older_than_ms")
    }

    /// A fixed mixed store: three namespaces, pins, a summary.
    func mixed() throws -> (EpisodeStore, ManualTime) {
        let (ep, time) = try makeEpisodes()
        for i in 0..<10 {
            try ep.add("p/a", "a\(i)")
            try ep.add("p/b", "b\(i)")
            time.advance(ms: 1000)
        }
        try ep.add("q", "elsewhere")
        _ = try ep.pin(ids: ["ep_1", "ep_4"], pinned: true)  // a0, b1
        _ = try ep.summarize(ns: "p/a", olderThanMs: nil, maxRecords: 3, by: alice)  // a0..a2 -> a summary
        return (ep, time)
    }

    @Test(arguments: [
        RetentionPolicy(ns: "p", maxAgeMs: 5_500),
        RetentionPolicy(ns: "p", maxCount: 3),
        RetentionPolicy(ns: "p", maxAgeMs: 8_500, maxCount: 5),
        RetentionPolicy(ns: nil, maxCount: 0, keepSummaries: false),
        RetentionPolicy(ns: "p/a", maxCount: 1),
    ])
    func dryRunReportsExactlyWhatTheRealPruneDeletes(policy: RetentionPolicy) throws {
        let (ep, _) = try mixed()
        let before = Set(try ep.all("p").map(\.id) + ep.all("q").map(\.id))
        let dry = try ep.prune(policy, dryRun: true, requestedBy: "test")
        #expect(dry.rev == nil)
        #expect(Set(try ep.all("p").map(\.id) + ep.all("q").map(\.id)) == before, "a dry run deletes nothing")
        let real = try ep.prune(policy, dryRun: false, requestedBy: "test")
        #expect(real.deleted == dry.deleted && real.kept == dry.kept)
        #expect((real.rev != nil) == (real.deleted > 0))
        let after = Set(try ep.all("p").map(\.id) + ep.all("q").map(\.id))
        #expect(before.count - after.count == real.deleted)
        let gone = before.subtracting(after)
        #expect(!gone.contains("ep_1") && !gone.contains("ep_4"), "pinned records never go")
        if policy.keepSummaries { #expect(after.contains("ep_23"), "the summary stays") }
        let log = try ep.deletions(ns: nil)
        #expect(Set(log.map(\.id)) == gone && log.allSatisfy { $0.requestedBy == "test" && !$0.reason.isEmpty })
    }

    @Test func maxCountKeepsTheNewestPerNamespaceAndAgeUsesTheClock() throws {
        let (ep, time) = try mixed()
        let r = try ep.prune(RetentionPolicy(ns: "p", maxCount: 2), dryRun: false, requestedBy: "test")
        // p/a: unprotected a1..a9 (a0 pinned, summary kept) -> keep a8, a9; p/b: b0, b2..b9 -> keep b8, b9.
        #expect(r.deleted == 7 + 7)
        #expect(try ep.all("p/a").map(\.content).filter { !$0.contains("record") } == ["a0", "a8", "a9"])
        #expect(try ep.all("p/b").map(\.content) == ["b1", "b8", "b9"])
        #expect(r.kept == 3 + 1 + 3)
        time.advance(ms: 60_000)
        let aged = try ep.prune(RetentionPolicy(maxAgeMs: 30_000), dryRun: false, requestedBy: "test")
        #expect(aged.deleted == 5)  // a8 a9 b8 b9 and "q"; pinned a0 b1 and the summary stay
        #expect(try ep.all("p").map(\.id).sorted() == ["ep_1", "ep_23", "ep_4"])
        let log = try ep.deletions(ns: "p/b")
        #expect(log.first?.reason.hasPrefix("beyond max_count=2") == true)
        #expect(log.last?.reason.hasPrefix("older than max_age_ms=30000") == true)
        #expect(wireError { () throws(WireError) in try ep.prune(RetentionPolicy(ns: "p"), dryRun: true, requestedBy: "t") }?.detail("field") == "policy")
    }

    @Test func retentionSummarizesWhatItDeletesFirst() throws {
        let (ep, time) = try makeEpisodes()
        for i in 0..<6 { try ep.add("job/x", "run \(i) failed: timeout", kind: "error") }
        time.advance(ms: 10_000)
        try ep.add("job/x", "run 6 succeeded", kind: "outcome")
        let pinned = try ep.add("job/x", "keep me")
        _ = try ep.pin(ids: [pinned.id], pinned: true)
        time.advance(ms: 1)
        let out = try ep.applyRetention([RetentionPolicy(ns: "job", maxAgeMs: 5_000)])
        #expect(out.count == 1 && out[0].summarized == 6 && out[0].summaries == 1 && out[0].prune.deleted == 6)
        let left = try ep.all("job")
        #expect(left.map(\.kind) == ["outcome", "note", "summary"])
        #expect(left.last?.derivedFrom == (1...6).map { "ep_\($0)" }, "what went is traceable from the summary")
        #expect(left.last?.provenance.agent == "mnemod")
        #expect(ep.stats.jobRuns == 1 && ep.stats.pruned == 6 && ep.stats.records == 3)
    }
}
