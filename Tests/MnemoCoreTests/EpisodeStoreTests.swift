import Foundation
import MnemoCore
import MnemoProtocol
import Testing

@Suite("episodic store: append, query, cursors, idempotency, pins")
struct EpisodeStoreTests {
    @Test func appendStampsProvenanceAndQueryReturnsTheRecord() throws {
        let (ep, time) = try makeEpisodes()
        let r = try ep.append(.init(ns: "wf/1", kind: "decision", content: "use WAL", data: Array("{\"a\":1}".utf8),
                                    task: "t1", tags: ["adr"], derivedFrom: ["x1"]), by: bob)
        #expect(r.id == "ep_1" && r.rev == 1 && r.at == time.nowMs() && !r.replayed)
        let rec = try #require(try ep.all("wf/1").first)
        #expect(rec.id == r.id && rec.ns == "wf/1" && rec.kind == "decision" && rec.content == "use WAL")
        #expect(rec.data == Array("{\"a\":1}".utf8) && rec.task == "t1" && rec.tags == ["adr"])
        #expect(rec.provenance.agent == "b" && rec.provenance.principal == "ops" && rec.provenance.uid == 1001)
        #expect(rec.provenance.pid == 4242 && rec.provenance.rev == 1 && rec.provenance.derivedFrom == ["x1"])
        #expect(rec.derivedFrom == ["x1"] && !rec.summarized && !rec.pinned)
        #expect(ep.stats.records == 1)
    }

    @Test func idempotentReplayReturnsTheOriginalAndAnotherPayloadIsRefused() throws {
        let (ep, time) = try makeEpisodes()
        let first = try ep.add("wf/1", "deploy started", key: "k1")
        time.advance(ms: 50)
        let again = try ep.add("wf/1", "deploy started", key: "k1")
        #expect(again.id == first.id && again.rev == first.rev && again.at == first.at && again.replayed)
        let e = wireError { () throws(WireError) in try ep.add("wf/1", "deploy finished", key: "k1") }
        #expect(e?.appCode == .idempotencyMismatch)
        let e2 = wireError { () throws(WireError) in try ep.add("wf/1", "deploy started", kind: "other", key: "k1") }
        #expect(e2?.appCode == .idempotencyMismatch)
        // The same JSON payload spelled differently, and tags in another order, replay.
        let d1 = try ep.append(.init(ns: "wf/3", kind: "n", content: "c", data: Array("{\"a\":1,\"b\":[1.0]}".utf8),
                                     tags: ["x", "y"], idempotencyKey: "k2"), by: alice)
        let d2 = try ep.append(.init(ns: "wf/3", kind: "n", content: "c", data: Array("{\"b\":[1.0], \"a\":1}".utf8),
                                     tags: ["y", "x"], idempotencyKey: "k2"), by: alice)
        #expect(d2.replayed && d2.id == d1.id)
        let d3 = wireError { () throws(WireError) in
            try ep.append(.init(ns: "wf/3", kind: "n", content: "c", data: Array("{\"a\":2,\"b\":[1.0]}".utf8),
                                tags: ["x", "y"], idempotencyKey: "k2"), by: alice)
        }
        #expect(d3?.appCode == .idempotencyMismatch)
        // The key is scoped to the namespace.
        #expect(try ep.add("wf/2", "deploy started", key: "k1").rev == 3)
        #expect(try ep.all("wf").count == 3)
    }

    @Test func badInputIsRefusedNamingTheFieldAndNothingIsApplied() throws {
        var limits = Limits()
        try limits.set("max_episode_content_bytes", to: 100)
        let (ep, _) = try makeEpisodes(limits)
        try ep.add("wf/1", "ok")
        let cases: [(EpisodeStore.Append, String)] = [
            (.init(ns: "wf/1", kind: "note", content: ""), "content"),
            (.init(ns: "wf//1", kind: "note", content: "x"), "ns"),
            (.init(ns: "wf/1", kind: "no spaces", content: "x"), "kind"),
            (.init(ns: "wf/1", kind: "note", content: "x", tags: ["a", "a"]), "tags"),
            (.init(ns: "wf/1", kind: "note", content: "x", tags: [""]), "tags"),
            (.init(ns: "wf/1", kind: "note", content: "x", task: ""), "task"),
            (.init(ns: "wf/1", kind: "note", content: "x", idempotencyKey: ""), "idempotency_key"),
            (.init(ns: "wf/1", kind: "note", content: "x", derivedFrom: Array(repeating: "i", count: 257)), "derived_from"),
        ]
        for (a, field) in cases {
            let e = wireError { () throws(WireError) in try ep.append(a, by: alice) }
            #expect(e?.code == -32602 && e?.detail("field") == .string(field), "\(field): \(String(describing: e))")
        }
        let big = wireError { () throws(WireError) in try ep.add("wf/1", String(repeating: "x", count: 101)) }
        #expect(big?.appCode == .limitExceeded && big?.detail("limit") == "max_episode_content_bytes")
        #expect(big?.detail("field") == "content")
        #expect(try ep.add("wf/1", String(repeating: "x", count: 100)).rev == 2, "exactly at the limit is fine")
        for (q, field) in [
            (EpisodeQuery(ns: "wf", since: 10, until: 10), "until"),
            (EpisodeQuery(ns: "wf", limit: 0), "limit"),
            (EpisodeQuery(ns: "wf", limit: 1001), "limit"),
            (EpisodeQuery(ns: "wf", descending: true, cursor: EpisodeCursor(rev: 5, descending: false)), "cursor"),
            (EpisodeQuery(ns: "/wf"), "ns"),
        ] {
            let e = wireError { () throws(WireError) in try ep.query(q) }
            #expect(e?.code == -32602 && e?.detail("field") == .string(field), "\(field)")
        }
        for bad in ["", "x", "ZXAxOmE6", "ZXAxOmE6LTE", "ZXAyOmE6MQ", "!!!!", String(repeating: "A", count: 100)] {
            let e = wireError { () throws(WireError) in try EpisodeCursor(decoding: bad) }
            #expect(e?.code == -32602 && e?.detail("field") == "cursor", "cursor \(bad)")
        }
        #expect(ep.stats.records == 2)
    }

    @Test func queryFiltersByPrefixKindAgentTaskTagsAndTime() throws {
        let (ep, time) = try makeEpisodes()
        try ep.add("wf/4", "a", kind: "obs", task: "t1", tags: ["x", "y"])
        time.advance(ms: 1000)
        try ep.add("wf/42", "b", kind: "obs", tags: ["x"])
        time.advance(ms: 1000)
        try ep.add("wf/4/sub", "c", kind: "err", task: "t1", tags: ["y"], by: bob)
        time.advance(ms: 1000)
        try ep.add("other", "d")
        let start = time.nowMs() - 3000
        func contents(_ q: EpisodeQuery) throws -> [String] { try ep.query(q).records.map(\.content) }
        #expect(try contents(EpisodeQuery(ns: "wf/4")) == ["a", "c"], "whole segments: wf/4 does not cover wf/42")
        #expect(try contents(EpisodeQuery(ns: "wf")) == ["a", "b", "c"])
        #expect(try contents(EpisodeQuery(ns: "wf", kind: "obs")) == ["a", "b"])
        #expect(try contents(EpisodeQuery(ns: "wf", agent: "b")) == ["c"])
        #expect(try contents(EpisodeQuery(ns: "wf", task: "t1")) == ["a", "c"])
        #expect(try contents(EpisodeQuery(ns: "wf", tags: ["x"])) == ["a", "b"])
        #expect(try contents(EpisodeQuery(ns: "wf", tags: ["x", "y"])) == ["a"])
        #expect(try contents(EpisodeQuery(ns: "wf", since: start + 1000)) == ["b", "c"])
        #expect(try contents(EpisodeQuery(ns: "wf", since: start + 1000, until: start + 2000)) == ["b"])
        #expect(try contents(EpisodeQuery(ns: "wf", until: start + 1000)) == ["a"])
        #expect(try contents(EpisodeQuery(ns: "wf", descending: true)) == ["c", "b", "a"])
        #expect(try contents(EpisodeQuery(ns: "nothing")) == [])
    }

    @Test("a cursor's opaque form is base64url of ep1:<a|d>:<rev>, unpadded, and reads back")
    func cursorEncoding() throws {
        for rev: Int64 in [1, 9, 99, 12_345, 1 << 40, Int64.max] {
            for descending in [false, true] {
                let c = EpisodeCursor(rev: rev, descending: descending)
                let reference = Data("ep1:\(descending ? "d" : "a"):\(rev)".utf8).base64EncodedString()
                    .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                    .replacingOccurrences(of: "=", with: "")
                #expect(c.encoded == reference)
                #expect(try EpisodeCursor(decoding: c.encoded) == c)
            }
        }
    }

    @Test(arguments: [false, true])
    func cursorsPageThroughEverythingOnceAndStayStableUnderAppends(descending: Bool) throws {
        let (ep, _) = try makeEpisodes()
        for i in 0..<25 { try ep.add(i % 2 == 0 ? "wf/a" : "wf/a/b", "r\(i)") }
        var seen: [Int64] = []
        var cursor: EpisodeCursor? = nil
        var pages = 0
        repeat {
            let page = try ep.query(EpisodeQuery(ns: "wf/a", limit: 10, descending: descending, cursor: cursor))
            seen += page.records.map(\.rev)
            cursor = page.cursor
            pages += 1
            // The opaque form round-trips.
            if let c = cursor { #expect(try EpisodeCursor(decoding: c.encoded) == c) }
            if pages == 1 { try ep.add("wf/a", "late") }  // appended while paging
        } while cursor != nil
        let expected: [Int64] = descending ? Array((1...25).reversed()) : Array(1...26)
        #expect(seen == expected)
        #expect(pages == 3)
    }

    @Test func pinAndUnpinCountOnlyChangesAndIgnoreUnknownIds() throws {
        let (ep, _) = try makeEpisodes()
        try ep.add("wf", "a")
        try ep.add("wf", "b")
        let r = try ep.pin(ids: ["ep_1", "ep_2", "ep_99"], pinned: true)
        #expect(r.updated == 2 && r.rev == 3)
        let none = try ep.pin(ids: ["ep_1"], pinned: true)
        #expect(none.updated == 0 && none.rev == nil, "already pinned: no change, no revision")
        #expect(try ep.pin(ids: ["ep_1"], pinned: false).updated == 1)
        #expect(try ep.all("wf").map(\.pinned) == [false, true])
        #expect(wireError { () throws(WireError) in try ep.pin(ids: [], pinned: true) }?.detail("field") == "ids")
        #expect(wireError { () throws(WireError) in try ep.pin(ids: ["a", "a"], pinned: true) }?.detail("field") == "ids")
    }
}
