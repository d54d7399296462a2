@testable import MnemoCore
import MnemoProtocol
import Testing

/// What observers (the watches) are told about each change.
@Suite("WorkingMemory: watch events")
struct WatchEventTests {
    typealias E = WatchEvent

    static func wm(_ rev: Int64, _ kind: String, _ ns: String = "ns", _ key: String? = nil) -> E {
        E(rev: rev, tier: "wm", kind: kind, ns: ns, key: key)
    }

    static func claim(_ rev: Int64, _ kind: String, _ resource: String, _ ns: String = "ns") -> E {
        E(rev: rev, tier: "claim", kind: kind, ns: ns, key: resource)
    }

    static func task(_ rev: Int64, _ state: TaskState, _ task: String, _ ns: String = "ns") -> E {
        E(rev: rev, tier: "task", kind: state.rawValue, ns: ns, key: task)
    }

    @Test("set, wm.expire (ttl), del, expiry by sweep and on read (expire), clear: one event each, at the change's revision")
    func keyEvents() throws {
        let (wm, time) = makeStore()
        let rec = EventRecorder(wm)
        let s1 = try wm.put("ns", "k", 1)
        let s2 = try wm.put("ns", "k", 2, ttl: 500)
        let t = try #require(try wm.expire(ns: "ns", key: "k", ttlMs: 100, by: alice))
        let p = try #require(try wm.expire(ns: "ns", key: "k", ttlMs: nil, by: alice))
        let d = try #require(try wm.delete(ns: "ns", key: "k", by: alice))
        #expect(rec.take() == [[Self.wm(s1.rev, "set", "ns", "k")], [Self.wm(s2.rev, "set", "ns", "k")],
                               [Self.wm(t.rev, "ttl", "ns", "k")], [Self.wm(p.rev, "ttl", "ns", "k")],
                               [Self.wm(d, "del", "ns", "k")]])

        try wm.put("ns", "swept", 1, ttl: 10)
        try wm.put("ns", "read", 1, ttl: 10)
        _ = rec.take()
        time.advance(ms: 10)
        #expect(wm.get(ns: "ns", key: "read") == nil)
        let afterRead = wm.revision
        #expect(wm.sweepExpired(max: 10).removed == 1)
        #expect(rec.take() == [[Self.wm(afterRead, "expire", "ns", "read")], [Self.wm(afterRead + 1, "expire", "ns", "swept")]])

        try wm.put("ns", "a", 1)
        try wm.put("ns", "b", 1)
        try wm.put("ns/sub", "c", 1)
        _ = rec.take()
        let c = try wm.clear(ns: "ns", by: alice)
        #expect(rec.take() == [[Self.wm(try #require(c.rev), "clear", "ns", nil)]])
    }

    @Test("a transaction is one batch of events sharing its one revision, in op order; deleting a missing key says nothing")
    func txnEvents() throws {
        let (wm, _) = makeStore()
        try wm.put("ns", "old", 1)
        let rec = EventRecorder(wm)
        let (rev, _) = try wm.txn(compare: [], ops: [
            .set(ns: "ns", key: "x", value: JSON.int(1).bytes, ttlMs: nil),
            .del(ns: "ns", key: "old"),
            .del(ns: "ns", key: "missing"),
            .set(ns: "other", key: "y", value: JSON.int(2).bytes, ttlMs: 1000),
            .del(ns: "ns", key: "x"),
        ], by: alice)
        #expect(rec.take() == [[Self.wm(rev, "set", "ns", "x"), Self.wm(rev, "del", "ns", "old"),
                                Self.wm(rev, "set", "other", "y"), Self.wm(rev, "del", "ns", "x")]])
    }

    @Test("refused changes (CONFLICT, FENCED, over a limit, nothing to do) produce no events")
    func noEventsOnRefusal() throws {
        let (wm, _) = makeStore(try limits("max_inbox_entries", 1))
        let w = try wm.put("ns", "k", 1)
        let (token, _) = try wm.grant("ns", "r", ttl: 1000)
        _ = try wm.post(ns: "ns", to: "b", type: "m", content: 1, by: alice)
        _ = try wm.putResult(ns: "ns", task: "t", idempotencyKey: "i", value: 1, by: alice)
        let rec = EventRecorder(wm)
        _ = wireError { () throws(WireError) in try wm.put("ns", "k", 2, ifVersion: w.version + 100) }
        _ = wireError { () throws(WireError) in try wm.putLeased("ns", "k", 2, resource: "r", token: token + 1) }
        _ = wireError { () throws(WireError) in try wm.acquire(ns: "ns", resource: "r", ttlMs: 0, by: bob) }
        _ = try wm.acquire(ns: "ns", resource: "r", ttlMs: 100, by: bob)  // held
        #expect(try !wm.release(ns: "ns", resource: "r", token: token + 1, by: bob))
        _ = wireError { () throws(WireError) in try wm.transition(ns: "ns", task: "t", to: .running, from: nil, fence: nil, by: alice) }
        _ = wireError { () throws(WireError) in try wm.post(ns: "ns", to: "b", type: "m", content: 2, by: alice) }
        _ = try wm.putResult(ns: "ns", task: "t", idempotencyKey: "i", value: 1, by: alice)  // replay
        _ = wireError { () throws(WireError) in try wm.putResult(ns: "ns", task: "t", idempotencyKey: "i", value: 2, by: alice) }
        #expect(try wm.delete(ns: "ns", key: "missing", by: alice) == nil)
        #expect(try wm.clear(ns: "empty", by: alice).deleted == 0)
        #expect(try wm.ack(ns: "ns", ids: ["nope"], by: bob) == 0)
        #expect(rec.take() == [])
    }

    @Test("claims: acquire at the token, renew at a new revision above it, release, expiry by sweep and by a later acquire")
    func claimEvents() throws {
        let (wm, time) = makeStore()
        let rec = EventRecorder(wm)
        let (token, _) = try wm.grant("ns", "r", ttl: 100)
        time.advance(ms: 50)
        _ = try wm.renew(ns: "ns", resource: "r", token: token, ttlMs: 100, by: alice)
        let renewRev = wm.revision
        #expect(renewRev > token)
        #expect(try wm.release(ns: "ns", resource: "r", token: token, by: alice))
        #expect(rec.take() == [[Self.claim(token, "acquire", "r")], [Self.claim(renewRev, "renew", "r")],
                               [Self.claim(renewRev + 1, "release", "r")]])

        let (t2, _) = try wm.grant("ns", "r", ttl: 100)
        time.advance(ms: 100)
        #expect(wm.sweepExpired(max: 10).removed == 1)
        #expect(rec.take() == [[Self.claim(t2, "acquire", "r")], [Self.claim(t2 + 1, "expire", "r")]])

        let (t3, _) = try wm.grant("ns", "q", ttl: 100)
        time.advance(ms: 100)
        let (t4, _) = try wm.grant("ns", "q", ttl: 100, by: bob)
        #expect(t4 == t3 + 2)
        #expect(rec.take() == [[Self.claim(t3, "acquire", "q")], [Self.claim(t3 + 1, "expire", "q")],
                               [Self.claim(t4, "acquire", "q")]])
    }

    @Test("a claim's end removes its leased keys in the same batch, as wm expire events at the claim's revision")
    func leasedKeyEvents() throws {
        let (wm, time) = makeStore()
        let (t, _) = try wm.grant("ns", "r", ttl: 100)
        try wm.putLeased("ns", "k2", 1, resource: "r", token: t)
        try wm.putLeased("ns", "k1", 1, resource: "r", token: t)
        try wm.put("ns", "plain", 1)
        let rec = EventRecorder(wm)
        #expect(try wm.release(ns: "ns", resource: "r", token: t, by: alice))
        let rel = wm.revision
        #expect(rec.take() == [[Self.claim(rel, "release", "r"), Self.wm(rel, "expire", "ns", "k1"), Self.wm(rel, "expire", "ns", "k2")]])

        let (t2, _) = try wm.grant("ns", "r", ttl: 100)
        let w = try wm.putLeased("ns", "k3", 1, resource: "r", token: t2)
        time.advance(ms: 100)
        #expect(wm.sweepExpired(max: 10).removed == 1)
        #expect(rec.take() == [[Self.claim(t2, "acquire", "r")], [Self.wm(w.rev, "set", "ns", "k3")],
                               [Self.claim(w.rev + 1, "expire", "r"), Self.wm(w.rev + 1, "expire", "ns", "k3")]])
    }

    @Test("keys already removed by a clear or rewritten without the lease are not reported again when the claim ends")
    func leasedKeysRemovedEarlier() throws {
        let (wm, _) = makeStore()
        let (t, _) = try wm.grant("ns", "r", ttl: 100)
        try wm.putLeased("ns", "cleared", 1, resource: "r", token: t)
        _ = try wm.clear(ns: "ns", by: alice)
        try wm.putLeased("ns", "rewritten", 1, resource: "r", token: t)
        try wm.put("ns", "rewritten", 2)
        try wm.putLeased("ns", "deleted", 1, resource: "r", token: t)
        _ = try wm.delete(ns: "ns", key: "deleted", by: alice)
        let rec = EventRecorder(wm)
        #expect(try wm.release(ns: "ns", resource: "r", token: t, by: alice))
        #expect(rec.take() == [[Self.claim(wm.revision, "release", "r")]])
        #expect(try wm.value("ns", "rewritten") == 2)
    }

    @Test("task transitions report the new state; a claim expiry's return to pending is in the claim's batch")
    func taskEvents() throws {
        let (wm, time) = makeStore()
        let rec = EventRecorder(wm)
        let p = try wm.transition(ns: "ns", task: "t", to: .pending, from: nil, fence: nil, by: alice)
        let (token, _) = try wm.grant("ns", "t", ttl: 100)
        try wm.putLeased("ns", "work", 1, resource: "t", token: token)
        let c = try wm.transition(ns: "ns", task: "t", to: .claimed, from: .pending, fence: nil, by: alice)
        let r = try wm.transition(ns: "ns", task: "t", to: .running, from: .claimed, fence: nil, by: alice)
        #expect(rec.take() == [[Self.task(p.rev, .pending, "t")], [Self.claim(token, "acquire", "t")],
                               [Self.wm(token + 1, "set", "ns", "work")],
                               [Self.task(c.rev, .claimed, "t")], [Self.task(r.rev, .running, "t")]])
        time.advance(ms: 100)
        #expect(wm.sweepExpired(max: 10).removed == 1)
        let x = r.rev + 1
        #expect(rec.take() == [[Self.claim(x, "expire", "t"), Self.wm(x, "expire", "ns", "work"), Self.task(x, .pending, "t")]])

        // done tasks are left alone by their claim's expiry
        let (token2, _) = try wm.grant("ns", "t", ttl: 100)
        try wm.walk("ns", "t", [.cancelled])
        time.advance(ms: 100)
        #expect(wm.sweepExpired(max: 10).removed == 1)
        #expect(rec.take() == [[Self.claim(token2, "acquire", "t")], [Self.task(token2 + 1, .cancelled, "t")],
                               [Self.claim(token2 + 2, "expire", "t")]])
    }

    @Test("result put reports key = task and id = idempotency key; its retention ends with forget")
    func resultEvents() throws {
        let time = ManualTime()
        let wm = WorkingMemory(limits: Limits(), time: time, resultRetentionMs: 1000)
        let rec = EventRecorder(wm)
        let (_, r) = try wm.putResult(ns: "ns", task: "t", idempotencyKey: "idem", value: 1, by: alice)
        #expect(rec.take() == [[E(rev: r.provenance.rev, tier: "result", kind: "put", ns: "ns", key: "t", id: "idem")]])
        time.advance(ms: 1000)
        #expect(wm.sweepExpired(max: 10).removed == 1)
        #expect(rec.take() == [[E(rev: r.provenance.rev + 1, tier: "result", kind: "forget", ns: "ns", key: "t", id: "idem")]])
    }

    @Test("inbox post and ack report the entry ids (ack: one event per id, one revision); retention ends with drop")
    func inboxEvents() throws {
        let time = ManualTime()
        let wm = WorkingMemory(limits: Limits(), time: time, inboxRetentionMs: 1000)
        let rec = EventRecorder(wm)
        let (id1, rev1) = try wm.post(ns: "ns", to: "b", type: "m", content: 1, by: alice)
        let (id2, rev2) = try wm.post(ns: "ns", to: "b", type: "m", content: 2, by: alice)
        #expect(try wm.ack(ns: "ns", ids: [id2, id1], by: bob) == 2)
        let ackRev = wm.revision
        #expect(rec.take() == [[E(rev: rev1, tier: "inbox", kind: "post", ns: "ns", id: id1)],
                               [E(rev: rev2, tier: "inbox", kind: "post", ns: "ns", id: id2)],
                               [E(rev: ackRev, tier: "inbox", kind: "ack", ns: "ns", id: id1),
                                E(rev: ackRev, tier: "inbox", kind: "ack", ns: "ns", id: id2)]])
        time.advance(ms: 1000)
        #expect(wm.sweepExpired(max: 10).removed == 2)
        let drops = rec.take()
        #expect(drops.count == 2)  // one change each
        #expect(drops.flatMap { $0 }.map(\.kind) == ["drop", "drop"])
        #expect(Set(drops.flatMap { $0 }.compactMap(\.id)) == [id1, id2])
        #expect(drops.flatMap { $0 }.map(\.rev) == [ackRev + 1, ackRev + 2])
    }

    @Test("over a mixed workload, revisions never go down, each batch has one revision, and the last is the store's")
    func revisionsNonDecreasing() throws {
        let time = ManualTime()
        let wm = WorkingMemory(limits: Limits(), time: time, resultRetentionMs: 300, inboxRetentionMs: 300)
        let rec = EventRecorder(wm)
        for i in 0..<60 {
            let ns = i % 2 == 0 ? "ns" : "ns/sub"
            try wm.put(ns, "k\(i % 7)", .int(i), ttl: i % 3 == 0 ? 50 : nil)
            if i % 5 == 0, case .granted(let tok, _) = try wm.acquire(ns: ns, resource: "r\(i % 4)", ttlMs: 120, by: alice) {
                try wm.putLeased(ns, "lease\(i)", 1, resource: "r\(i % 4)", token: tok)
                if i % 10 == 0 { _ = try wm.renew(ns: ns, resource: "r\(i % 4)", token: tok, ttlMs: 80, by: alice) }
            }
            if i % 4 == 0 { _ = try wm.post(ns: ns, to: "b", type: "m", content: .int(i), by: alice) }
            if i % 6 == 0 { _ = try wm.putResult(ns: ns, task: "t", idempotencyKey: "i\(i)", value: .int(i), by: alice) }
            if i % 9 == 0 { _ = try wm.txn(compare: [], ops: [.del(ns: ns, key: "k1"), .set(ns: ns, key: "k2", value: [0x31], ttlMs: 30)], by: alice) }
            if i % 11 == 0 { _ = try wm.clear(ns: ns, by: alice) }
            time.advance(ms: 17)
            if i % 4 == 3 { _ = wm.sweepExpired(max: 5) }
        }
        time.advance(ms: 10_000)
        while wm.sweepExpired(max: 7).more {}
        let batches = rec.take()
        #expect(batches.count > 100)
        for b in batches { #expect(Set(b.map(\.rev)).count == 1) }
        let revs = batches.flatMap { $0.map(\.rev) }
        #expect(revs == revs.sorted())
        #expect(revs.last == wm.revision)
        let firsts = batches.compactMap(\.first?.rev)
        #expect(Set(firsts).count == firsts.count)  // every change its own revision
        #expect(Set(batches.flatMap { $0.map(\.tier) }) == ["wm", "claim", "inbox", "result"])
    }
}
