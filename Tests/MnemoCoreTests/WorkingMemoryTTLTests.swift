import MnemoCore
import MnemoProtocol
import Testing

@Suite("WorkingMemory: TTL")
struct WorkingMemoryTTLTests {
    @Test("a key is visible until expiresAt - 1 and gone exactly at expiresAt", arguments: [1, 2, 1000, 86_400_000] as [Int64])
    func expiryInstant(_ ttl: Int64) throws {
        let (wm, time) = makeStore()
        let t0 = time.nowMs()
        let r = try wm.put("ns", "k", "v", ttl: ttl)
        #expect(r.expiresAt == t0 + ttl)
        #expect(wm.get(ns: "ns", key: "k")?.expiresAt == t0 + ttl)
        time.advance(ms: ttl - 1)
        #expect(wm.get(ns: "ns", key: "k") != nil)
        #expect(wm.list(ns: "ns", prefix: nil, limit: 10, cursor: nil).items.map(\.key) == ["k"])
        time.advance(ms: 1)
        #expect(wm.get(ns: "ns", key: "k") == nil)
        #expect(wm.list(ns: "ns", prefix: nil, limit: 10, cursor: nil).items.isEmpty)
    }

    @Test("an expired key is invisible to every operation, not only get")
    func expiredEverywhere() throws {
        let (wm, time) = makeStore()
        try wm.put("ns", "k", "v", ttl: 10)
        time.advance(ms: 10)
        #expect(wm.list(ns: "ns", prefix: nil, limit: 10, cursor: nil).items.isEmpty)
        #expect(try wm.expire(ns: "ns", key: "k", ttlMs: 1000, by: alice) == nil)
        #expect(try wm.delete(ns: "ns", key: "k", by: alice) == nil)
        let e = try #require(wireError { () throws(WireError) in try wm.put("ns", "k", 1, ifVersion: 1) })
        #expect(e.detail("version") == .null)
    }

    @Test("a plain set without ttl makes a key persistent")
    func plainSetClearsTTL() throws {
        let (wm, time) = makeStore()
        try wm.put("ns", "k", 1, ttl: 100)
        let r = try wm.put("ns", "k", 2)
        #expect(r.expiresAt == nil)
        #expect(wm.get(ns: "ns", key: "k")?.expiresAt == 0)
        time.advance(ms: 1_000_000)
        #expect(try wm.value("ns", "k") == 2)
        #expect(wm.sweepExpired(max: 100).removed == 0)
        #expect(try wm.value("ns", "k") == 2)
    }

    @Test("a new ttl replaces the old one, later or earlier")
    func rewriteTTL() throws {
        let (wm, time) = makeStore()
        let t0 = time.nowMs()
        try wm.put("ns", "longer", 1, ttl: 100)
        try wm.put("ns", "longer", 1, ttl: 500)
        try wm.put("ns", "shorter", 1, ttl: 500)
        try wm.put("ns", "shorter", 1, ttl: 100)
        #expect(wm.get(ns: "ns", key: "longer")?.expiresAt == t0 + 500)
        time.advance(ms: 100)
        #expect(wm.get(ns: "ns", key: "longer") != nil)
        #expect(wm.get(ns: "ns", key: "shorter") == nil)
        time.advance(ms: 400)
        #expect(wm.get(ns: "ns", key: "longer") == nil)
    }

    @Test("expire sets a TTL on a persistent key, keeping value and links, with a new version")
    func expireSets() throws {
        let (wm, time) = makeStore()
        let t0 = time.nowMs()
        let w = try wm.set(.init(ns: "ns", key: "k", value: bytes("v"), task: "t1", derivedFrom: ["x"]), by: alice)
        time.advance(ms: 5)
        let r = try #require(try wm.expire(ns: "ns", key: "k", ttlMs: 50, by: bob))
        #expect(r.expiresAt == t0 + 55)
        #expect(r.version > w.version)
        #expect(r.rev == r.version)
        let item = try #require(wm.get(ns: "ns", key: "k"))
        #expect(item.value == bytes("v"))
        #expect(item.version == r.version)
        #expect(item.provenance.task == "t1")
        #expect(item.provenance.derivedFrom == ["x"])
        #expect(item.provenance.agent == "b")
        #expect(item.provenance.at == t0 + 5)
        time.advance(ms: 49)
        #expect(wm.get(ns: "ns", key: "k") != nil)
        time.advance(ms: 1)
        #expect(wm.get(ns: "ns", key: "k") == nil)
    }

    @Test("expire(ttlMs: nil) removes a TTL")
    func expireRemoves() throws {
        let (wm, time) = makeStore()
        try wm.put("ns", "k", 1, ttl: 100)
        let r = try #require(try wm.expire(ns: "ns", key: "k", ttlMs: nil, by: alice))
        #expect(r.expiresAt == nil)
        time.advance(ms: 10_000)
        #expect(try wm.value("ns", "k") == 1)
        #expect(wm.sweepExpired(max: 10).removed == 0)
        #expect(wm.get(ns: "ns", key: "k")?.expiresAt == 0)
    }

    @Test("expire on a missing key or namespace returns nil and changes nothing")
    func expireMissing() throws {
        let (wm, _) = makeStore()
        #expect(try wm.expire(ns: "ns", key: "k", ttlMs: 10, by: alice) == nil)
        #expect(try wm.expire(ns: "ns", key: "k", ttlMs: nil, by: alice) == nil)
        #expect(wm.revision == 0)
        #expect(wm.stats.keys == 0)
    }

    @Test("ttl bounds: 1 and maxTTLms are accepted")
    func ttlBoundsAccepted() throws {
        let (wm, _) = makeStore()
        let max = Limits().maxTTLms
        try wm.put("ns", "one", 1, ttl: 1)
        try wm.put("ns", "max", 1, ttl: max)
        _ = try wm.expire(ns: "ns", key: "max", ttlMs: max, by: alice)
        _ = try wm.txn(compare: [], ops: [.set(ns: "ns", key: "t", value: bytes(1), ttlMs: max)], by: alice)
        #expect(wm.stats.keys == 3)
    }

    @Test("ttl bounds: 0, negative and above maxTTLms are -32602 naming ttl_ms, in set, expire and txn",
          arguments: [0, -1, Int64.min, Limits().maxTTLms + 1, Int64.max])
    func ttlBoundsRejected(_ ttl: Int64) throws {
        let (wm, _) = makeStore()
        try wm.put("ns", "k", 1)
        let revision = wm.revision
        let errors = [
            wireError { () throws(WireError) in try wm.put("ns", "k", 2, ttl: ttl) },
            wireError { () throws(WireError) in try wm.put("ns", "new", 2, ttl: ttl) },
            wireError { () throws(WireError) in try wm.expire(ns: "ns", key: "k", ttlMs: ttl, by: alice) },
            wireError { () throws(WireError) in
                try wm.txn(compare: [], ops: [.set(ns: "ns", key: "k", value: bytes(3), ttlMs: ttl)], by: alice)
            },
        ]
        for e in errors {
            #expect(e?.code == -32602)
            #expect(e?.detail("field") == "ttl_ms")
        }
        #expect(wm.revision == revision)
        #expect(try wm.value("ns", "k") == 1)
        #expect(wm.get(ns: "ns", key: "k")?.expiresAt == 0)
        #expect(wm.get(ns: "ns", key: "new") == nil)
    }
}
