import Foundation
import MnemoClient
import MnemoProtocol
import Testing

@Suite("episodic memory end to end")
struct EpisodicTests {
    func contents(_ r: JSON) -> [String] { (r["records"]?.arrayValue ?? []).compactMap { $0["content"]?.stringValue } }

    @Test func queryFiltersAndCursorsOverTheWire() throws {
        let daemon = try Daemon()
        let a = try daemon.client("agent-a")
        let b = try daemon.client("agent-b")
        for i in 0..<12 {
            let c = i % 3 == 0 ? b : a
            _ = try c.call("ep.append", ["ns": i < 6 ? "wf/1" : "wf/1/sub", "kind": i % 2 == 0 ? "obs" : "err",
                                          "content": .string("event \(i)"), "task": i < 4 ? "t1" : "t2",
                                          "tags": i % 4 == 0 ? ["x", "y"] : ["x"]])
        }
        _ = try a.call("ep.append", ["ns": "wf/10", "kind": "obs", "content": "not under wf/1"])
        #expect(contents(try a.call("ep.query", ["ns": "wf/1", "limit": 100])).count == 12)
        #expect(contents(try a.call("ep.query", ["ns": "wf/1", "agent": "agent-b"])) == ["event 0", "event 3", "event 6", "event 9"])
        #expect(contents(try a.call("ep.query", ["ns": "wf/1", "kind": "err", "task": "t1"])) == ["event 1", "event 3"])
        #expect(contents(try a.call("ep.query", ["ns": "wf/1", "tags": ["y"]])) == ["event 0", "event 4", "event 8"])
        #expect(contents(try a.call("ep.query", ["ns": "wf/1/sub", "order": "desc", "limit": 2])) == ["event 11", "event 10"])
        // Page through newest first, 5 at a time.
        var cursor: JSON? = nil
        var seen: [String] = []
        repeat {
            var p: [JSONMember] = [.init("ns", "wf/1"), .init("order", "desc"), .init("limit", 5)]
            if let cursor { p.append(.init("cursor", cursor)) }
            let page = try a.call("ep.query", .object(p))
            seen += contents(page)
            cursor = page["cursor"]
        } while cursor != nil
        #expect(seen == (0..<12).reversed().map { "event \($0)" })
        // Time window from the records' own stamps.
        let all = try a.call("ep.query", ["ns": "wf/1"])["records"]?.arrayValue ?? []
        let since = try #require(all[4]["at"]), until = try #require(all.last?["at"])
        let window = contents(try a.call("ep.query", ["ns": "wf/1", "since": since, "until": until]))
        let expected = all.filter { r in
            let at = r["at"]?.stringValue ?? ""
            return at >= (since.stringValue ?? "") && at < (until.stringValue ?? "")
        }.compactMap { $0["content"]?.stringValue }
        #expect(window == expected && !window.isEmpty && !window.contains("event 11"))
        #expect(all.first?["provenance"]?["agent"] == "agent-b")
    }

    @Test func badParamsAreRefusedWithTheFieldNamedAndNothingApplied() throws {
        let daemon = try Daemon(config: "[limits]\nmax_episode_content_bytes = 1000\n")
        let c = try daemon.client()
        let rev = try #require(try c.call("admin.health")["rev"]?.int64Value)
        let cases: [(String, JSON, String)] = [
            ("ep.append", ["ns": "wf", "kind": "note", "content": "x", "at": "2026-11-22T00:14:52.123Z"], "at"),
            ("ep.append", ["ns": "wf", "kind": "note", "content": "x", "agent": "root"], "agent"),
            ("ep.append", ["ns": "wf", "kind": "note", "content": ""], "content"),
            ("ep.append", ["ns": "wf", "kind": "note"], "content"),
            ("ep.append", ["ns": "wf", "kind": "note", "content": "x", "tags": ["a", "a"]], "tags"),
            ("ep.query", ["ns": "wf", "since": "2026-11-22T00:00:00.000Z", "until": "2026-11-22T00:00:00.000Z"], "until"),
            ("ep.query", ["ns": "wf", "until": "2026-13-40T00:00:00.000Z"], "until"),
            ("ep.query", ["ns": "wf", "since": "yesterday"], "since"),
            ("ep.query", ["ns": "wf", "cursor": "not-a-cursor"], "cursor"),
            ("ep.query", ["ns": "wf", "order": "newest"], "order"),
            ("ep.query", ["ns": "wf", "limit": 1001], "limit"),
            ("ep.search", ["ns": "wf", "text": ""], "text"),
            ("ep.search", ["ns": "wf", "text": "x", "colour": "red"], "colour"),
            ("ep.search", ["ns": "wf", "text": "x", "mode": "fuzzy"], "mode"),
            ("ep.append", ["ns": "wf", "kind": "note", "content": "x", "embed": "yes"], "embed"),
            ("ep.append", ["ns": "wf", "kind": "note", "content": " \t ", "embed": true], "content"),
            ("ep.summarize", ["ns": "wf", "max_records": 0], "max_records"),
            ("ep.summarize", ["ns": "wf", "older_than_ms": -5], "older_than_ms"),
            ("ep.prune", ["ns": "wf"], "policy"),
            ("ep.prune", ["policy": [:]], "policy"),
            ("ep.prune", ["policy": ["max_age_ms": 1000, "max_bytes": 10]], "policy.max_bytes"),
            ("ep.pin", ["ids": ["ep_1"]], "pinned"),
            ("ep.pin", ["ids": [], "pinned": true], "ids"),
        ]
        for (method, params, field) in cases {
            let e = wireError { try c.call(method, params) }
            #expect(e?.code == -32602 && e?.detail("field") == .string(field), "\(method) \(params.text): \(String(describing: e))")
        }
        let big = wireError { try c.call("ep.append", ["ns": "wf", "kind": "note", "content": .string(String(repeating: "x", count: 1001))]) }
        #expect(big?.appCode == .limitExceeded && big?.detail("field") == "content")
        #expect(try c.call("admin.health")["rev"]?.int64Value == rev, "nothing was applied")
        #expect(try c.call("ep.query", ["ns": "wf"])["records"] == [])
    }

    @Test func searchRanksByBM25AndHostileTextIsJustWords() throws {
        let daemon = try Daemon()
        let c = try daemon.client()
        for text in ["the cache was cold", "cache cache cache: warm it first", "nothing here", "a cache miss storm"] {
            _ = try c.call("ep.append", ["ns": "kb", "kind": "note", "content": .string(text)])
        }
        let hits = try c.call("ep.search", ["ns": "kb", "text": "cache"])["hits"]?.arrayValue ?? []
        #expect(hits.map { $0["content"]?.stringValue ?? "" }.first == "cache cache cache: warm it first")
        #expect(hits.count == 3)
        let scores = hits.compactMap { $0["score"]?.doubleValue }
        #expect(scores == scores.sorted(by: >))
        for text in ["\"", "cache AND", "NEAR(cache", "((", "*", "cache*", "^cache", "ns:kb"] {
            #expect(throws: Never.self) { _ = try c.call("ep.search", ["ns": "kb", "text": .string(text)]) }
        }
    }

    /// The `match` of a hit as `[arm: rank]`, plus `fused` when present.
    func arms(_ hit: JSON) -> [String: Int64] {
        var out: [String: Int64] = [:]
        for arm in ["vector", "keyword"] { if let r = hit["match"]?[arm]?["rank"]?.int64Value { out[arm] = r } }
        if hit["match"]?["fused"] != nil { out["fused"] = 1 }
        return out
    }

    @Test func searchCoversAPrefixInEveryModeAndEmbedsByFlagOrPolicy() throws {
        let daemon = try Daemon(config: "[[episodic.embed]]\nns = \"t/wf\"\n")
        let c = try daemon.client()
        func append(_ ns: String, _ content: String, embed: Bool? = nil) throws -> JSON {
            var p: JSON = ["ns": .string(ns), "kind": "note", "content": .string(content)]
            if let embed { p = ["ns": .string(ns), "kind": "note", "content": .string(content), "embed": .bool(embed)] }
            return try c.call("ep.append", p)
        }
        let backup = try append("t/wf/1", "the nightly backup of the orders database failed")  // policy
        let host = try append("t/wf/2/log", "orders database moved to a new host")  // policy
        let other = try append("t/kb", "backups failing every night", embed: true)
        let plain = try append("t/kb", "nightly backup report")
        #expect(backup["embedded"] == true && host["embedded"] == true && other["embedded"] == true)
        #expect(plain["embedded"] == nil && plain["truncated"] == nil && backup["truncated"] == nil)
        #expect(try c.call("admin.stats")["episodic"]?["vectors"] == 3)
        func hits(_ ns: String, _ text: String, _ mode: String? = nil) throws -> [JSON] {
            var p: JSON = ["ns": .string(ns), "text": .string(text)]
            if let mode { p = ["ns": .string(ns), "text": .string(text), "mode": .string(mode)] }
            let r = try c.call("ep.search", p)
            #expect(r["skipped"] == nil)
            return r["hits"]?.arrayValue ?? []
        }
        // A prefix: t/wf finds t/wf/1 and t/wf/2/log, never t/kb; hits are whole records with their ns.
        let keyword = try hits("t/wf", "orders database", "keyword")
        #expect(Set(keyword.compactMap { $0["ns"]?.stringValue }) == ["t/wf/1", "t/wf/2/log"])
        #expect(keyword.allSatisfy { arms($0) == ["keyword": arms($0)["keyword"] ?? 0] && $0["match"]?["keyword"]?["score"] == $0["score"] })
        #expect(keyword.first?["provenance"]?["agent"] == "tester" && keyword.first?["content"] != nil)
        // Keyword = any word: one shared word is enough.
        #expect(try hits("t/wf", "restore the orders", "keyword").count == 2)
        let vector = try hits("t", "nightly backup failed", "vector")
        // Both failing-backup records are nearer by meaning than the host move.
        #expect(Set(vector.prefix(2).compactMap { $0["id"] }) == Set([backup["id"], other["id"]].compactMap { $0 }) && vector.count == 3,
                "only embedded records")
        #expect(vector.allSatisfy { arms($0).keys.sorted() == ["vector"] && ($0["score"]?.doubleValue ?? 2) <= 1 })
        let hybrid = try hits("t", "nightly backup failed", "hybrid")
        #expect(hybrid.first?["id"] == backup["id"] && arms(hybrid[0]).keys.sorted() == ["fused", "keyword", "vector"])
        #expect(hybrid.first?["score"] == hybrid.first?["match"]?["fused"])
        #expect(hybrid.contains { $0["id"] == plain["id"] && arms($0).keys.sorted() == ["fused", "keyword"] })
        // Pruning drops the vectors: from the table and the search.
        _ = try c.call("ep.prune", ["ns": "t/wf", "policy": ["max_count": 0]])
        #expect(try c.call("admin.stats")["episodic"]?["vectors"] == 1)
        #expect(try hits("t", "nightly backup failed", "vector").compactMap { $0["id"] } == [other["id"]!])
    }

    @Test func visibilityHidesNamespacesUnderThePrefix() throws {
        let config = """
            [[principals]]
            name = "ops"
            token_sha256 = "\(try AuditTests.sha256Hex("ops-secret"))"
            grants = [{ ns = "**", perms = "rwa" }]
            [[principals]]
            name = "worker"
            token_sha256 = "\(try AuditTests.sha256Hex("worker-secret"))"
            grants = [{ ns = "wf/open", perms = "r" }]
            """
        let daemon = try Daemon(config: config)
        let ops = try MnemoClient(socketPath: daemon.socket, agent: "ops", token: "ops-secret")
        for ns in ["wf/open", "wf/open/sub", "wf/secret", "wf"] {
            _ = try ops.call("ep.append", ["ns": .string(ns), "kind": "note", "content": "the launch codes", "embed": true])
        }
        let worker = try MnemoClient(socketPath: daemon.socket, agent: "w", token: "worker-secret")
        for mode in ["keyword", "vector", "hybrid"] {
            let hits = try worker.call("ep.search", ["ns": "wf", "text": "launch codes", "mode": .string(mode)])["hits"]?.arrayValue ?? []
            #expect(Set(hits.compactMap { $0["ns"]?.stringValue }) == ["wf/open", "wf/open/sub"], "\(mode)")
        }
        #expect(try worker.call("ep.search", ["ns": "wf/secret", "text": "launch"])["hits"] == [])
    }

    @Test func vectorsSurviveARestartAndTheRetryIsNotStoredTwice() throws {
        let daemon = try Daemon()
        let c = try daemon.client()
        let p: JSON = ["ns": "mem", "kind": "note", "content": "the cache was cold after the deploy", "embed": true, "idempotency_key": "k"]
        let first = try c.call("ep.append", p)
        #expect(try c.call("ep.append", p) == first && first["embedded"] == true)
        _ = try c.call("ep.append", ["ns": "mem", "kind": "note", "content": "disk full on the build host", "embed": true])
        let search: JSON = ["ns": "mem", "text": "cold cache", "mode": "vector"]
        let before = try c.call("ep.search", search)
        #expect(try c.call("admin.stats")["episodic"]?["vectors"] == 2)
        daemon.kill()
        let again = try daemon.restarted()
        let d = try again.client()
        #expect(try d.call("ep.search", search) == before && before["hits"]?.arrayValue?.count == 2)
        #expect(try d.call("admin.stats")["episodic"]?["vectors"] == 2)
        #expect(try d.call("ep.append", p) == first)
    }

    @Test func summarizeThenPruneWithPinsAndDryRun() throws {
        let daemon = try Daemon()
        let c = try daemon.client("worker")
        var ids: [JSON] = []
        for i in 0..<10 {
            let r = try c.call("ep.append", ["ns": "run/7", "kind": i == 4 ? "error" : "step", "content": .string("step \(i) done")])
            ids.append(try #require(r["id"]))
        }
        let s = try c.call("ep.summarize", ["ns": "run/7", "max_records": 6])
        #expect(s["summarized"] == 6)
        let summary = try #require(s["summaries"]?.arrayValue?.first)
        #expect(summary["kind"] == "summary" && summary["derived_from"] == .array(Array(ids[0..<6])))
        #expect(try c.call("ep.pin", ["ids": [ids[1], ids[8]], "pinned": true])["updated"] == 2)
        let policy: JSON = ["max_count": 2]
        let dry = try c.call("ep.prune", ["ns": "run", "policy": policy, "dry_run": true])
        // Unprotected: 8 records (10 minus 2 pinned); keep the newest 2 -> 6 go. 11 in scope.
        #expect(dry["deleted"] == 6 && dry["kept"] == 5 && dry["rev"] == nil)
        #expect(contents(try c.call("ep.query", ["ns": "run"])).count == 11)
        let real = try c.call("ep.prune", ["ns": "run", "policy": policy])
        #expect(real["deleted"] == dry["deleted"] && real["kept"] == dry["kept"] && real["rev"] != nil)
        let left = try c.call("ep.query", ["ns": "run"])["records"]?.arrayValue ?? []
        #expect(left.compactMap { $0["id"] } == [ids[1], ids[7], ids[8], ids[9], summary["id"]!])
        #expect(left.first?["summarized"] == true && left.first?["pinned"] == true)
        let stats = try c.call("admin.stats")
        #expect(stats["episodic"]?["records"] == 5 && stats["episodic"]?["deletions_logged"] == 6)
    }

    @Test func watchesSeeEpisodicChanges() throws {
        let daemon = try Daemon()
        let w = try daemon.client("watcher")
        let c = try daemon.client("writer")
        let sub = try w.call("watch.subscribe", ["ns": "wt", "tiers": ["ep"]])
        let a = try c.call("ep.append", ["ns": "wt/a", "kind": "note", "content": "one"])
        _ = try c.call("ep.append", ["ns": "wt/a", "kind": "note", "content": "one", "idempotency_key": "k"])
        _ = try c.call("ep.append", ["ns": "wt/a", "kind": "note", "content": "one", "idempotency_key": "k"])  // replay: no event
        _ = try c.call("wm.set", ["ns": "wt", "key": "k", "value": 1])  // another tier: not watched
        let pin = try c.call("ep.pin", ["ids": [a["id"]!], "pinned": true])
        let s = try c.call("ep.summarize", ["ns": "wt/a"])
        let p = try c.call("ep.prune", ["ns": "wt", "policy": ["max_count": 0]])
        var events: [JSON] = []
        while events.count < 5, let n = try w.nextNotification(timeoutMs: 3000) { events.append(n) }
        let got = events.map { e in
            [e["params"]?["kind"]?.stringValue ?? "", e["params"]?["id"]?.stringValue ?? "-", e["params"]?["rev"]?.text ?? ""]
        }
        let summary = try #require(s["summaries"]?.arrayValue?.first)
        func text(_ j: JSON?) -> String { j?.stringValue ?? j?.text ?? "" }
        let expected: [[String]] = [
            ["append", text(a["id"]), text(a["rev"])],
            ["append", "ep_2", "2"],
            ["pin", text(a["id"]), text(pin["rev"])],
            ["summarize", text(summary["id"]), text(summary["rev"])],
            ["prune", "-", text(p["rev"])],
        ]
        #expect(got == expected)
        #expect(events.allSatisfy { $0["params"]?["watch_id"] == sub["watch_id"] && $0["params"]?["tier"] == "ep" })
    }

    @Test func idempotentReplayOverTheWire() throws {
        let daemon = try Daemon()
        let c = try daemon.client()
        let p: JSON = ["ns": "wf", "kind": "note", "content": "once", "data": ["n": 1], "idempotency_key": "k-1"]
        let first = try c.call("ep.append", p)
        let again = try daemon.client("other").call("ep.append", p)
        #expect(first == again)
        let e = wireError { try c.call("ep.append", ["ns": "wf", "kind": "note", "content": "once", "data": ["n": 2], "idempotency_key": "k-1"]) }
        #expect(e?.appCode == .idempotencyMismatch)
        #expect(try c.call("ep.query", ["ns": "wf"])["records"]?.arrayValue?.count == 1)
    }

    @Test(arguments: ["normal", "strict"])
    func aRestartKeepsEverythingAndRevisionsNeverGoBack(mode: String) throws {
        let config = "durability = \"\(mode)\"\n"
        let daemon = try Daemon(config: config)
        let c = try daemon.client()
        for i in 0..<20 {
            _ = try c.call("ep.append", ["ns": "keep", "kind": "note", "content": .string("memory \(i)"), "idempotency_key": .string("k\(i)")])
        }
        _ = try c.call("ep.summarize", ["ns": "keep", "max_records": 5])
        _ = try c.call("ep.pin", ["ids": ["ep_2"], "pinned": true])
        let before = try c.call("ep.query", ["ns": "keep", "limit": 1000])
        let rev = try #require(try c.call("admin.health")["rev"]?.int64Value)
        daemon.kill()
        let again = try daemon.restarted(config: config)
        let d = try again.client()
        #expect(try d.call("ep.query", ["ns": "keep", "limit": 1000]) == before)
        #expect((try d.call("admin.health")["rev"]?.int64Value ?? 0) >= rev)
        let recalled = try d.call("ep.search", ["ns": "keep", "text": "memory 7"])["hits"]?.arrayValue ?? []
        #expect(recalled.first?["content"] == "memory 7" && recalled.count == 10, "any word matches; both words rank first")
        let replay = try d.call("ep.append", ["ns": "keep", "kind": "note", "content": "memory 3", "idempotency_key": "k3"])
        #expect((replay["rev"]?.int64Value ?? 0) < rev, "the replay answers the original append")
        let next = try d.call("ep.append", ["ns": "keep", "kind": "note", "content": "after"])
        #expect((next["rev"]?.int64Value ?? 0) > rev)
        let wm = try d.call("wm.set", ["ns": "keep", "key": "k", "value": 1])
        #expect((wm["rev"]?.int64Value ?? 0) > (next["rev"]?.int64Value ?? 0), "one global revision across tiers")
    }

    @Test func theRetentionJobSummarizesThenPrunesOnItsSchedule() throws {
        let config = """
            [episodic]
            job_interval_ms = 1000

            [[episodic.retention]]
            ns = "old"
            max_count = 2
            """
        let daemon = try Daemon(config: config)
        let c = try daemon.client()
        for i in 0..<6 { _ = try c.call("ep.append", ["ns": "old/x", "kind": "note", "content": .string("n\(i)")]) }
        var left: [JSON] = []
        for _ in 0..<100 {  // the job runs every second; give it up to 10 s
            left = try c.call("ep.query", ["ns": "old"])["records"]?.arrayValue ?? []
            if left.count == 3 { break }
            usleep(100_000)
        }
        #expect(left.compactMap { $0["content"]?.stringValue }.prefix(2) == ["n4", "n5"])
        #expect(left.last?["kind"] == "summary" && left.last?["derived_from"] == ["ep_1", "ep_2", "ep_3", "ep_4"])
        #expect(left.last?["provenance"]?["agent"] == "mnemod")
        #expect((try c.call("admin.stats")["jobs"]?["episodic_retention"]?["runs"]?.int64Value ?? 0) >= 1)
    }

    @Test func badEpisodicConfigStopsTheDaemon() throws {
        for config in [
            "[episodic]\nbogus = 1", "[episodic]\njob_interval_ms = 5", "[episodic]\nsummarizer_command = \"relative/path\"",
            "[[episodic.retention]]\nns = \"wf\"", "[[episodic.retention]]\nns = \"bad//ns\"\nmax_count = 1",
            "[[episodic.retention]]\nmax_age_ms = 0", "[[episodic.retention]]\nmax_count = 5\nkeep_pinned = \"no\"",
            "[episodic]\nsearch_mode = \"fuzzy\"", "[episodic]\nsearch_mode = 1", "[[episodic.embed]]\nns = \"wf\"\nmodel = \"x\"",
            "[[episodic.embed]]\nns = \"bad//ns\"", "[episodic]\nembed = \"wf\"",
        ] {
            #expect(throws: (any Error).self, "\(config)") {
                do {
                    _ = try Daemon(config: config)
                } catch let e as DaemonError {
                    #expect(e.description.contains("status 78"), "\(config): \(e)")
                    throw e
                }
            }
        }
        _ = try Daemon(config: """
            [episodic]
            job_interval_ms = 0
            summarizer_command = ["/bin/cat"]
            search_mode = "hybrid"
            [[episodic.retention]]
            max_count = 5
            [[episodic.embed]]
            ns = "wf"
            [[episodic.embed]]
            """)
    }

    @Test func cliSummarizeAndPruneTalkToTheDaemon() throws {
        let daemon = try Daemon()
        let c = try daemon.client()
        for i in 0..<30 { _ = try c.call("ep.append", ["ns": "cli/a", "kind": "note", "content": .string("line \(i)")]) }
        func mnemo(_ args: [String]) throws -> (Int32, String, String) { try daemon.cli(args) }
        let (s1, out1, err1) = try mnemo(["summarize", "cli/a", "--chunk", "10"])
        #expect(s1 == 0 && out1.hasPrefix("summarized 30 records of cli/a into 3 summaries"))
        #expect(err1.contains("summarized 20 records into 2 summaries so far"), "progress on stderr")
        let (s2, out2, _) = try mnemo(["prune", "cli", "--max-count", "5", "--dry-run"])
        #expect(s2 == 0 && out2.hasPrefix("would delete 25 records, kept 8"))
        #expect(contents(try c.call("ep.query", ["ns": "cli"])).count == 33)
        let (s3, out3, _) = try mnemo(["prune", "cli", "--max-count", "5", "-o", "json"])
        let r = try JSONParser.parse(out3)
        #expect(s3 == 0 && r["deleted"] == 25 && r["kept"] == 8)
        let (s4, _, err4) = try mnemo(["prune", "cli"])
        #expect(s4 == 64 && err4.contains("--max-age-ms"))
    }
}
