import MnemoCore
import MnemoProtocol
import Testing

@Suite("WorkingMemory: inboxes")
struct WorkingMemoryInboxTests {
    /// Someone who is neither alice nor bob, nor shares a principal with them.
    static let dave = Caller(agent: "d", principal: "guests", uid: 2000, gid: 2000, pid: 99)

    static func read(_ wm: WorkingMemory, _ ns: String = "ns", for caller: Caller, unackedOnly: Bool = true,
                     limit: Int = 1000) -> [InboxEntry] {
        wm.inbox(ns: ns, for: caller, unackedOnly: unackedOnly, limit: limit)
    }

    @Test("a post is stored with sender, addressee, type, content and provenance; its id is unique")
    func post() throws {
        let (wm, time) = makeStore()
        let (id, rev) = try wm.post(ns: "ns", to: "b", type: "handoff", content: ["step": 3], by: alice)
        #expect(rev == wm.revision)
        let entries = Self.read(wm, for: bob)
        #expect(entries.count == 1)
        let e = try #require(entries.first)
        #expect(e.id == id)
        #expect(e.from == "a")
        #expect(e.to == "b")
        #expect(e.type == "handoff")
        #expect(e.content == JSON(dictionaryLiteral: ("step", 3)).bytes)
        #expect(!e.acked)
        #expect(e.provenance.agent == "a")
        #expect(e.provenance.rev == rev)
        #expect(e.provenance.at == time.nowMs())
        let (id2, _) = try wm.post(ns: "ns", to: "b", type: "handoff", content: ["step": 3], by: alice)
        #expect(id2 != id)
    }

    @Test("only the addressee reads an entry: by agent name or by principal; not the sender, not others")
    func directional() throws {
        let (wm, _) = makeStore()
        let (toB, _) = try wm.post(ns: "ns", to: "b", type: "m", content: 1, by: alice)  // bob's agent name
        let (toOps, _) = try wm.post(ns: "ns", to: "ops", type: "m", content: 2, by: alice)  // bob's principal
        let (toLocal, _) = try wm.post(ns: "ns", to: "local", type: "m", content: 3, by: bob)  // alice's and carol's principal
        let (toA, _) = try wm.post(ns: "ns", to: "a", type: "m", content: 4, by: bob)  // alice only
        #expect(Self.read(wm, for: bob).map(\.id) == [toB, toOps])
        #expect(Self.read(wm, for: alice).map(\.id) == [toLocal, toA])
        #expect(Self.read(wm, for: carol).map(\.id) == [toLocal])
        #expect(Self.read(wm, for: Self.dave) == [])
        // per namespace: nothing leaks to a sub-namespace or a sibling
        #expect(Self.read(wm, "ns/sub", for: bob) == [])
        #expect(Self.read(wm, "other", for: bob) == [])
    }

    @Test("ack by the addressee marks the entry; ack by anyone else (sender included) does nothing")
    func ackDirectional() throws {
        let (wm, _) = makeStore()
        let (id, _) = try wm.post(ns: "ns", to: "b", type: "m", content: 1, by: alice)
        let revBefore = wm.revision
        #expect(try wm.ack(ns: "ns", ids: [id], by: alice) == 0)
        #expect(try wm.ack(ns: "ns", ids: [id], by: Self.dave) == 0)
        #expect(try wm.ack(ns: "other", ids: [id], by: bob) == 0)
        #expect(wm.revision == revBefore)
        #expect(Self.read(wm, for: bob).map(\.acked) == [false])
        #expect(try wm.ack(ns: "ns", ids: [id], by: bob) == 1)
        #expect(wm.revision == revBefore + 1)
        #expect(Self.read(wm, for: bob) == [])
        #expect(Self.read(wm, for: bob, unackedOnly: false).map(\.acked) == [true])
        // again: nothing new to acknowledge, no revision taken
        #expect(try wm.ack(ns: "ns", ids: [id], by: bob) == 0)
        #expect(wm.revision == revBefore + 1)
    }

    @Test("ack by principal; a mixed id list acknowledges only the caller's own, unknown and duplicate ids are ignored")
    func ackMixed() throws {
        let (wm, _) = makeStore()
        let (mine1, _) = try wm.post(ns: "ns", to: "ops", type: "m", content: 1, by: alice)
        let (mine2, _) = try wm.post(ns: "ns", to: "b", type: "m", content: 2, by: alice)
        let (theirs, _) = try wm.post(ns: "ns", to: "a", type: "m", content: 3, by: bob)
        #expect(try wm.ack(ns: "ns", ids: [mine1, theirs, "999999", mine2, mine1], by: bob) == 2)
        #expect(Self.read(wm, for: bob) == [])
        #expect(Self.read(wm, for: alice).map(\.id) == [theirs])
    }

    @Test("unacked_only false returns acknowledged entries too, with their flag")
    func unackedOnly() throws {
        let (wm, _) = makeStore()
        var ids: [String] = []
        for i in 0..<4 { ids.append(try wm.post(ns: "ns", to: "b", type: "m", content: .int(i), by: alice).id) }
        #expect(try wm.ack(ns: "ns", ids: [ids[1], ids[3]], by: bob) == 2)
        #expect(Self.read(wm, for: bob).map(\.id) == [ids[0], ids[2]])
        let all = Self.read(wm, for: bob, unackedOnly: false)
        #expect(all.map(\.id) == ids)
        #expect(all.map(\.acked) == [false, true, false, true])
    }

    @Test("entries come oldest first (by post order, not by id text) and limit keeps the oldest")
    func orderAndLimit() throws {
        let (wm, time) = makeStore()
        var ids: [String] = []
        for i in 0..<25 {
            // other writes in between make ids of different lengths ("9" sorts after "10" as text)
            try wm.put("ns", "k\(i)", 1)
            if i % 3 == 0 { _ = try wm.post(ns: "ns", to: "a", type: "m", content: 0, by: bob) }
            ids.append(try wm.post(ns: "ns", to: "b", type: "m", content: .int(i), by: alice).id)
            time.advance(ms: 1)
        }
        let all = Self.read(wm, for: bob)
        #expect(all.map(\.id) == ids)
        #expect(all.map(\.content) == (0..<25).map { JSON.int($0).bytes })
        #expect(Self.read(wm, for: bob, limit: 3).map(\.id) == Array(ids.prefix(3)))
        #expect(Self.read(wm, for: bob, limit: 1).map(\.id) == [ids[0]])
        #expect(Self.read(wm, for: bob, limit: 0) == [])
        // with unacked_only, the limit applies after the filter
        #expect(try wm.ack(ns: "ns", ids: Array(ids.prefix(10)), by: bob) == 10)
        #expect(Self.read(wm, for: bob, limit: 2).map(\.id) == [ids[10], ids[11]])
    }

    @Test("max_inbox_entries: the post after the limit is LIMIT_EXCEEDED; per namespace; acked entries still count")
    func inboxLimit() throws {
        let (wm, _) = makeStore(try limits("max_inbox_entries", 3))
        var ids: [String] = []
        for i in 0..<3 { ids.append(try wm.post(ns: "ns", to: "b", type: "m", content: .int(i), by: alice).id) }
        #expect(try wm.ack(ns: "ns", ids: ids, by: bob) == 3)
        let revBefore = wm.revision
        let e = try #require(wireError { () throws(WireError) in try wm.post(ns: "ns", to: "a", type: "m", content: 9, by: bob) })
        #expect(e.appCode == .limitExceeded)
        #expect(e.detail("limit") == "max_inbox_entries")
        #expect(e.detail("max") == .int(3))
        #expect(wm.revision == revBefore)
        #expect(Self.read(wm, for: alice) == [])
        #expect(wm.stats.inboxEntries == 3)
        // other namespaces have their own room
        _ = try wm.post(ns: "other", to: "b", type: "m", content: 1, by: alice)
        _ = try wm.post(ns: "ns/sub", to: "b", type: "m", content: 1, by: alice)
    }

    @Test("entries past the retention are no longer read, the sweep drops them, and their room is given back")
    func retention() throws {
        let time = ManualTime()
        var l = Limits()
        try l.set("max_inbox_entries", to: 2)
        let wm = WorkingMemory(limits: l, time: time, inboxRetentionMs: 1000)
        let (old, _) = try wm.post(ns: "ns", to: "b", type: "m", content: 1, by: alice)
        time.advance(ms: 500)
        let (young, _) = try wm.post(ns: "ns", to: "b", type: "m", content: 2, by: alice)
        #expect(Self.read(wm, for: bob).first?.expiresAt == time.nowMs() + 500)
        time.advance(ms: 499)
        #expect(Self.read(wm, for: bob).map(\.id) == [old, young])
        #expect(wm.sweepExpired(max: 100).removed == 0)
        time.advance(ms: 1)  // `old` is 1000 ms old
        #expect(Self.read(wm, for: bob, unackedOnly: false).map(\.id) == [young])
        #expect(wm.sweepExpired(max: 100).removed == 1)
        #expect(wm.stats.inboxEntries == 1)
        let (next, _) = try wm.post(ns: "ns", to: "b", type: "m", content: 3, by: alice)  // room again
        #expect(Self.read(wm, for: bob, unackedOnly: false).map(\.id) == [young, next])
        time.advance(ms: 500)
        #expect(wm.sweepExpired(max: 100).removed == 1)
        #expect(Self.read(wm, for: bob).map(\.id) == [next])
    }

    @Test("a bad addressee or type is -32602; an oversized content is LIMIT_EXCEEDED; nothing is posted")
    func validation() throws {
        let (wm, _) = makeStore(try limits("max_value_bytes", 64))
        for bad in ["", "has space", "slash/no", String(repeating: "x", count: 65)] {
            let e = try #require(wireError { () throws(WireError) in try wm.post(ns: "ns", to: bad, type: "m", content: 1, by: alice) })
            #expect(e.code == -32602)
            #expect(e.detail("field") == "to")
        }
        for bad in ["", String(repeating: "t", count: 65)] {
            let e = try #require(wireError { () throws(WireError) in try wm.post(ns: "ns", to: "b", type: bad, content: 1, by: alice) })
            #expect(e.code == -32602)
            #expect(e.detail("field") == "type")
        }
        let e = try #require(wireError { () throws(WireError) in
            try wm.post(ns: "ns", to: "b", type: "m", content: .string(String(repeating: "c", count: 100)), by: alice)
        })
        #expect(e.appCode == .limitExceeded)
        #expect(wm.stats.inboxEntries == 0)
        #expect(wm.revision == 0)
    }
}
