import MnemoCore
import MnemoProtocol
import Testing

@Suite("per-principal quotas")
struct QuotaTests {
    static let capped = Caller(agent: "t", principal: "team", uid: 5, gid: 5, pid: 5)
    static let other = Caller(agent: "o", principal: "ops", uid: 6, gid: 6, pid: 6)

    static func book(_ quota: Quota) -> QuotaBook {
        QuotaBook([Principal(name: "team", tokenSHA256: nil, uids: nil, grants: [], quota: quota)])
    }

    /// The shares add up to the total, whatever wrote last.
    static func balanced(_ wm: WorkingMemory) -> Bool {
        wm.bytesByPrincipal.values.reduce(0, +) == wm.stats.bytes
    }

    @Test("working bytes are charged to the last writer and given back on delete, across every kind of item")
    func workingShares() throws {
        var q = Quota()
        q.workingBytes = 4000
        let wm = WorkingMemory(limits: Limits(), time: ManualTime(), quotas: Self.book(q))
        try wm.put("wf", "a", .string(String(repeating: "x", count: 1000)), by: Self.capped)
        try wm.put("wf", "b", .string(String(repeating: "x", count: 1000)), by: Self.capped)
        #expect(Self.balanced(wm) && wm.bytesByPrincipal["team"] ?? 0 > 2000)
        // Over its quota: refused, nothing applied; another principal is not limited by it.
        let e = try #require(wireError { () throws(WireError) in
            try wm.put("wf", "c", .string(String(repeating: "x", count: 2000)), by: Self.capped)
        })
        #expect(e.appCode == .limitExceeded && e.detail("limit") == "quota.working_bytes" && e.detail("max") == .int(4000))
        #expect(wm.get(ns: "wf", key: "c") == nil)
        try wm.put("wf", "c", .string(String(repeating: "x", count: 2000)), by: Self.other)
        // Overwriting its own key frees what it held: a same-size rewrite fits at the edge.
        try wm.put("wf", "a", .string(String(repeating: "y", count: 1000)), by: Self.capped)
        // Someone else overwriting its key moves the charge.
        let before = wm.bytesByPrincipal["team"] ?? 0
        try wm.put("wf", "b", 1, by: Self.other)
        #expect((wm.bytesByPrincipal["team"] ?? 0) < before - 1000)
        // Claims, results, inbox entries and task steps count too, and come back.
        guard case .granted(let token, _) = try wm.acquire(ns: "wf", resource: "r", ttlMs: 60_000, by: Self.capped) else {
            Issue.record("not granted")
            return
        }
        _ = try wm.putResult(ns: "wf", task: "t1", idempotencyKey: "k1", value: ["ok": true], by: Self.capped)
        _ = try wm.post(ns: "wf", to: "o", type: "note", content: "hello", by: Self.capped)
        _ = try wm.transition(ns: "wf", task: "t1", to: .pending, from: nil, fence: nil, by: Self.capped)
        _ = try wm.transition(ns: "wf", task: "t1", to: .claimed, from: .pending, fence: nil, by: Self.other)
        #expect(Self.balanced(wm))
        #expect(try wm.release(ns: "wf", resource: "r", token: token, by: Self.capped))
        _ = try wm.delete(ns: "wf", key: "a", by: Self.capped)
        _ = try wm.clear(ns: "wf", by: Self.other)
        #expect(Self.balanced(wm))
        // What is left of team's share: its result, its inbox entry and its task step.
        #expect((wm.bytesByPrincipal["team"] ?? 0) < 1200 && wm.bytesByPrincipal["team"] ?? 0 > 0)
    }

    @Test("the request bucket holds one second's worth and refills with time")
    func requestRate() throws {
        var q = Quota()
        q.requestsPerSecond = 10
        let meter = Self.book(q).meter("team")
        var admitted = 0
        for _ in 0..<20 where (try? meter.admit(nowNs: 1_000_000_000)) != nil { admitted += 1 }
        #expect(admitted == 10)
        let e = try #require(wireError { () throws(WireError) in try meter.admit(nowNs: 1_000_000_000) })
        #expect(e.detail("limit") == "quota.requests_per_second")
        admitted = 0
        for _ in 0..<20 where (try? meter.admit(nowNs: 1_500_000_000)) != nil { admitted += 1 }
        #expect(admitted == 5)
        #expect(meter.usage.refused == 26)
        // A principal without the quota is never refused.
        let free = Self.book(q).meter("ops")
        for _ in 0..<1000 { try free.admit(nowNs: 1) }
    }

    @Test("connections are counted per principal; a reload changes the limit for live meters")
    func connections() throws {
        var q = Quota()
        q.connections = 2
        let book = Self.book(q)
        let meter = book.meter("team")
        try meter.openConnection()
        try meter.openConnection()
        let e = try #require(wireError { () throws(WireError) in try meter.openConnection() })
        #expect(e.detail("limit") == "quota.connections" && e.detail("max") == .int(2))
        meter.closeConnection()
        try meter.openConnection()
        q.connections = 3
        book.reload([Principal(name: "team", tokenSHA256: nil, uids: nil, grants: [], quota: q)])
        try meter.openConnection()
        #expect(meter.usage.connections == 3)
        book.reload([])
        #expect(book.quota("team") == nil)
        try meter.openConnection()
    }

    @Test("episodic records count against their writer until pruned")
    func episodicRecords() throws {
        var q = Quota()
        q.episodicRecords = 3
        q.episodicBytes = 1000
        let rev = RevisionCounter(0)
        let store = try EpisodeStore(dir: "/nonexistent", durability: .volatile, limits: Limits(), time: ManualTime(),
                                     quotas: Self.book(q), nextRevision: { () throws(WireError) -> Int64 in rev.next() })
        func append(_ content: String, by caller: Caller) throws(WireError) {
            _ = try store.append(.init(ns: "wf/log", kind: "note", content: content), by: caller)
        }
        for i in 0..<3 { try append("note \(i)", by: Self.capped) }
        let e = try #require(wireError { () throws(WireError) in try append("one more", by: Self.capped) })
        #expect(e.detail("limit") == "quota.episodic_records")
        #expect(store.stats.records == 3)
        try append("not limited", by: Self.other)
        let big = try #require(wireError { () throws(WireError) in
            try append(String(repeating: "x", count: 1001), by: Self.capped)
        })
        #expect(big.detail("limit") == "quota.episodic_records")  // the count is checked first
        _ = try store.prune(RetentionPolicy(ns: "wf/log", maxCount: 1), dryRun: false, requestedBy: "test")
        try append("room again", by: Self.capped)
        let bytes = try #require(wireError { () throws(WireError) in
            try append(String(repeating: "x", count: 1001), by: Self.capped)
        })
        #expect(bytes.detail("limit") == "quota.episodic_bytes")
        let usage = try store.store.usageByPrincipal()
        // Pruning kept the newest record (ops's): team's three went, one was added since.
        #expect(usage["team"]?.records == 1 && usage["team"]?.bytes == "room again".utf8.count)
        #expect(usage["ops"]?.records == 1)
    }
}
