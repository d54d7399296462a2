import MnemoCore
import MnemoProtocol
import Synchronization
import Testing

@Suite("WorkingMemory: txn")
struct WorkingMemoryTxnTests {
    typealias Op = WorkingMemory.Op

    static func set(_ ns: String, _ key: String, _ v: JSON, ttl: Int64? = nil) -> Op {
        .set(ns: ns, key: key, value: v.bytes, ttlMs: ttl)
    }

    /// Values, versions and the revision: what a failed transaction must leave alone.
    static func state(_ wm: WorkingMemory, _ keys: [(String, String)]) -> [String] {
        keys.map { ns, key in
            let item = wm.get(ns: ns, key: key)
            return "\(ns)/\(key)=\(item.map { String(decoding: $0.value, as: UTF8.self) } ?? "-")@\(item?.version ?? 0)"
        } + ["rev=\(wm.revision)", "keys=\(wm.stats.keys)", "bytes=\(wm.stats.bytes)"]
    }

    @Test("all ops apply under one shared revision")
    func appliesAll() throws {
        let (wm, time) = makeStore()
        try wm.put("a", "gone", 1)
        let before = wm.revision
        let r = try wm.txn(compare: [], ops: [
            Self.set("a", "x", 1), Self.set("b/c", "y", "two", ttl: 100), .del(ns: "a", key: "gone"),
            .del(ns: "a", key: "never-existed"),
        ], by: bob)
        #expect(r.rev == before + 1)
        #expect(wm.revision == before + 1)
        #expect(r.results == [.set(version: r.rev, expiresAt: nil), .set(version: r.rev, expiresAt: time.nowMs() + 100),
                              .del(deleted: true), .del(deleted: false)])
        let x = try #require(wm.get(ns: "a", key: "x"))
        let y = try #require(wm.get(ns: "b/c", key: "y"))
        #expect(x.version == r.rev)
        #expect(y.version == r.rev)
        #expect(x.provenance.agent == "b")
        #expect(x.provenance.rev == r.rev)
        #expect(x.provenance.at == time.nowMs())
        #expect(try wm.value("b/c", "y") == "two")
        #expect(wm.get(ns: "a", key: "gone") == nil)
    }

    @Test("matching version and absent compares let the ops through")
    func comparesHold() throws {
        let (wm, _) = makeStore()
        let a = try wm.put("ns", "a", 1)
        let r = try wm.txn(compare: [.version(ns: "ns", key: "a", a.version), .absent(ns: "ns", key: "b")],
                           ops: [Self.set("ns", "a", 2), Self.set("ns", "b", 2)], by: alice)
        #expect(try wm.value("ns", "a") == 2)
        #expect(try wm.value("ns", "b") == 2)
        #expect(wm.get(ns: "ns", key: "b")?.version == r.rev)
    }

    @Test("a failing compare reports its index and the current version, and nothing changes")
    func failingCompare() throws {
        let (wm, _) = makeStore()
        let a = try wm.put("ns", "a", 1)
        let b1 = try wm.put("ns", "b", 1)
        let b2 = try wm.put("ns", "b", 2)
        let keys = [("ns", "a"), ("ns", "b"), ("ns", "c")]
        let before = Self.state(wm, keys)
        let e = try #require(wireError { () throws(WireError) in
            try wm.txn(compare: [.version(ns: "ns", key: "a", a.version), .version(ns: "ns", key: "b", b1.version)],
                       ops: [Self.set("ns", "a", 9), Self.set("ns", "c", 9), .del(ns: "ns", key: "b")], by: alice)
        })
        #expect(e.appCode == .conflict)
        #expect(e.detail("index") == .int(1))
        #expect(e.detail("ns") == "ns")
        #expect(e.detail("key") == "b")
        #expect(e.detail("version") == .int(b2.version))
        #expect(Self.state(wm, keys) == before)
    }

    @Test("an absent compare fails on a present key, reporting its version")
    func absentFails() throws {
        let (wm, _) = makeStore()
        let k = try wm.put("ns", "k", 1)
        let before = Self.state(wm, [("ns", "k"), ("ns", "x")])
        let e = try #require(wireError { () throws(WireError) in
            try wm.txn(compare: [.absent(ns: "ns", key: "free"), .absent(ns: "ns", key: "k")],
                       ops: [Self.set("ns", "x", 1)], by: alice)
        })
        #expect(e.appCode == .conflict)
        #expect(e.detail("index") == .int(1))
        #expect(e.detail("version") == .int(k.version))
        #expect(Self.state(wm, [("ns", "k"), ("ns", "x")]) == before)
    }

    @Test("a version compare on a missing key fails with version null")
    func versionOnMissing() throws {
        let (wm, _) = makeStore()
        let e = try #require(wireError { () throws(WireError) in
            try wm.txn(compare: [.version(ns: "ns", key: "k", 1)], ops: [Self.set("ns", "k", 1)], by: alice)
        })
        #expect(e.detail("index") == .int(0))
        #expect(e.detail("version") == .null)
        #expect(wm.get(ns: "ns", key: "k") == nil)
        #expect(wm.revision == 0)
    }

    @Test("an absent compare holds for an expired key")
    func absentAfterExpiry() throws {
        let (wm, time) = makeStore()
        try wm.put("ns", "k", 1, ttl: 10)
        time.advance(ms: 10)
        _ = try wm.txn(compare: [.absent(ns: "ns", key: "k")], ops: [Self.set("ns", "k", 2)], by: alice)
        #expect(try wm.value("ns", "k") == 2)
    }

    @Test("up to maxTxnOps compares and ops are fine, one more is LIMIT_EXCEEDED max_txn_ops")
    func opLimit() throws {
        let (wm, _) = makeStore(try limits("max_txn_ops", 4))
        let ops = (0..<4).map { Self.set("ns", "k\($0)", 1) }
        let compares = (0..<4).map { WorkingMemory.Compare.absent(ns: "ns", key: "c\($0)") }
        _ = try wm.txn(compare: compares, ops: ops, by: alice)
        let revision = wm.revision

        let tooManyOps = try #require(wireError { () throws(WireError) in
            try wm.txn(compare: [], ops: ops + [Self.set("ns", "k4", 1)], by: alice)
        })
        #expect(tooManyOps.appCode == .limitExceeded)
        #expect(tooManyOps.detail("limit") == "max_txn_ops")
        #expect(tooManyOps.detail("max") == .int(4))

        let tooManyCompares = try #require(wireError { () throws(WireError) in
            try wm.txn(compare: compares + [.absent(ns: "ns", key: "c4")], ops: [Self.set("ns", "z", 1)], by: alice)
        })
        #expect(tooManyCompares.appCode == .limitExceeded)
        #expect(tooManyCompares.detail("limit") == "max_txn_ops")
        #expect(wm.revision == revision)
        #expect(wm.get(ns: "ns", key: "k4") == nil)
        #expect(wm.get(ns: "ns", key: "z") == nil)
    }

    @Test("set then del of the same key leaves it absent; del then set leaves it present")
    func setAndDelSameKey() throws {
        let (wm, _) = makeStore()
        try wm.put("ns", "k", "old")
        let r1 = try wm.txn(compare: [], ops: [Self.set("ns", "k", "new"), .del(ns: "ns", key: "k")], by: alice)
        #expect(r1.results == [.set(version: r1.rev, expiresAt: nil), .del(deleted: true)])
        #expect(wm.get(ns: "ns", key: "k") == nil)
        #expect(wm.stats.keys == 0)
        #expect(wm.stats.bytes == 0)

        let r2 = try wm.txn(compare: [], ops: [.del(ns: "ns", key: "k"), Self.set("ns", "k", "back")], by: alice)
        #expect(r2.results == [.del(deleted: false), .set(version: r2.rev, expiresAt: nil)])
        #expect(try wm.value("ns", "k") == "back")
        #expect(wm.stats.keys == 1)

        let r3 = try wm.txn(compare: [], ops: [Self.set("ns", "k", 1), Self.set("ns", "k", 2)], by: alice)
        #expect(try wm.value("ns", "k") == 2)
        #expect(wm.get(ns: "ns", key: "k")?.version == r3.rev)
        #expect(wm.stats.keys == 1)
    }

    @Test("a bad op (key, value size, ttl) rejects the whole transaction")
    func badOpRejectsAll() throws {
        let (wm, _) = makeStore(try limits("max_value_bytes", 64))
        try wm.put("ns", "k", 1)
        let keys = [("ns", "k"), ("ns", "a")]
        let before = Self.state(wm, keys)
        let cases: [[Op]] = [
            [Self.set("ns", "a", 1), Self.set("ns", "", 1)],
            [Self.set("ns", "a", 1), .del(ns: "ns", key: "")],
            [Self.set("ns", "a", 1), Self.set("ns", "k", .string(String(repeating: "x", count: 100)))],
            [Self.set("ns", "a", 1), Self.set("ns", "k", 2, ttl: 0)],
        ]
        for ops in cases {
            let e = try #require(wireError { () throws(WireError) in try wm.txn(compare: [], ops: ops, by: alice) })
            #expect(e.code == -32602 || e.appCode == .limitExceeded)
            #expect(Self.state(wm, keys) == before)
        }
    }

    @Test("a txn that touches an expired key: the expiry and the txn get distinct, increasing revisions")
    func expiredKeyInTxn() throws {
        let (wm, time) = makeStore()
        let changes = Mutex<[[Int64]]>([])
        wm.observe { events in changes.withLock { $0.append(events.map(\.rev)) } }
        try wm.put("ns", "k", 1, ttl: 10)
        time.advance(ms: 10)
        let r = try wm.txn(compare: [], ops: [.del(ns: "ns", key: "k"), Self.set("ns", "x", 1)], by: alice)
        #expect(r.results == [.del(deleted: false), .set(version: r.rev, expiresAt: nil)])
        #expect(wm.get(ns: "ns", key: "x")?.version == r.rev)
        let seen = changes.withLock { $0 }
        // one change = one revision shared by all its events
        for revs in seen { #expect(Set(revs).count == 1, "\(seen)") }
        let perChange = seen.compactMap(\.first)
        do {
            #expect(perChange == perChange.sorted() && Set(perChange).count == perChange.count, "\(seen)")
            #expect(wm.revision == Int64(perChange.count))
        }
    }
}
