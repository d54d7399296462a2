import MnemoCore
import MnemoProtocol
import Testing

@Suite("WorkingMemory: delete and clear")
struct WorkingMemoryDeleteClearTests {
    @Test("delete removes a key and returns the revision it took")
    func delete() throws {
        let (wm, _) = makeStore()
        try wm.put("ns", "k", 1)
        let rev = try wm.delete(ns: "ns", key: "k", by: alice)
        #expect(rev == wm.revision)
        #expect(rev == 2)
        #expect(wm.get(ns: "ns", key: "k") == nil)
        #expect(wm.stats.keys == 0)
        #expect(wm.stats.bytes == 0)
    }

    @Test("delete of a missing key returns nil and takes no revision")
    func deleteMissing() throws {
        let (wm, _) = makeStore()
        try wm.put("ns", "other", 1)
        #expect(try wm.delete(ns: "ns", key: "k", by: alice) == nil)
        #expect(try wm.delete(ns: "nope", key: "k", by: alice) == nil)
        #expect(wm.revision == 1)
    }

    @Test("delete with the current ifVersion succeeds")
    func deleteIfVersion() throws {
        let (wm, _) = makeStore()
        let r = try wm.put("ns", "k", 1)
        #expect(try wm.delete(ns: "ns", key: "k", ifVersion: r.version, by: alice) != nil)
        #expect(wm.get(ns: "ns", key: "k") == nil)
    }

    @Test("delete with a stale ifVersion is CONFLICT with the current version and deletes nothing")
    func deleteStale() throws {
        let (wm, _) = makeStore()
        let r1 = try wm.put("ns", "k", 1)
        let r2 = try wm.put("ns", "k", 2)
        let e = try #require(wireError { () throws(WireError) in
            try wm.delete(ns: "ns", key: "k", ifVersion: r1.version, by: alice)
        })
        #expect(e.appCode == .conflict)
        #expect(e.detail("version") == .int(r2.version))
        #expect(try wm.value("ns", "k") == 2)
        #expect(wm.revision == r2.rev)
    }

    @Test("delete with ifVersion of a missing key is CONFLICT with version null")
    func deleteIfVersionMissing() throws {
        let (wm, _) = makeStore()
        let e = try #require(wireError { () throws(WireError) in try wm.delete(ns: "ns", key: "k", ifVersion: 1, by: alice) })
        #expect(e.appCode == .conflict)
        #expect(e.detail("version") == .null)
        #expect(wm.revision == 0)
    }

    @Test("delete validates the key", arguments: ["", String(repeating: "k", count: Limits().maxKeyBytes + 1)])
    func deleteBadKey(_ key: String) throws {
        let (wm, _) = makeStore()
        let e = try #require(wireError { () throws(WireError) in try wm.delete(ns: "ns", key: key, by: alice) })
        #expect(e.code == -32602)
        #expect(e.detail("field") == "key")
    }

    @Test("clear removes exactly that namespace, reports the count and takes one revision")
    func clear() throws {
        let (wm, _) = makeStore()
        for i in 0..<5 { try wm.put("t/1", "k\(i)", 1) }
        try wm.put("t/1/sub", "k0", 1)
        try wm.put("t/10", "k0", 1)
        try wm.put("t", "k0", 1)
        let bytesOthers = wm.stats.bytes
        let before = wm.revision
        let r = try wm.clear(ns: "t/1", by: alice)
        #expect(r.deleted == 5)
        #expect(r.rev == before + 1)
        #expect(wm.revision == before + 1)
        #expect(wm.allKeys("t/1") == [])
        #expect(wm.allKeys("t/1/sub") == ["k0"])
        #expect(wm.allKeys("t/10") == ["k0"])
        #expect(wm.allKeys("t") == ["k0"])
        #expect(wm.stats.keys == 3)
        #expect(wm.stats.namespaces == 3)
        // exactly what a store holding only the three survivors is charged
        let (survivors, _) = makeStore()
        try survivors.put("t/1/sub", "k0", 1)
        try survivors.put("t/10", "k0", 1)
        try survivors.put("t", "k0", 1)
        #expect(wm.stats.bytes == survivors.stats.bytes)
        #expect(wm.stats.bytes < bytesOthers)
    }

    @Test("clear counts only live keys and takes no revision when there are none")
    func clearExpiredOrEmpty() throws {
        let (wm, time) = makeStore()
        #expect(try wm.clear(ns: "none", by: alice) == (deleted: 0, rev: nil))
        try wm.put("ns", "live", 1)
        try wm.put("ns", "dead1", 1, ttl: 5)
        try wm.put("ns", "dead2", 1, ttl: 5)
        time.advance(ms: 5)
        let before = wm.revision
        let r = try wm.clear(ns: "ns", by: alice)
        #expect(r.deleted == 1)
        #expect(r.rev == before + 1)
        #expect(wm.stats.keys == 0)
        #expect(wm.stats.bytes == 0)

        try wm.put("ns2", "dead", 1, ttl: 5)
        time.advance(ms: 5)
        let before2 = wm.revision
        #expect(try wm.clear(ns: "ns2", by: alice) == (deleted: 0, rev: nil))
        #expect(wm.revision == before2)
        #expect(wm.get(ns: "ns2", key: "dead") == nil)
        while wm.sweepExpired(max: 100).more {}
        #expect(wm.stats.keys == 0)
    }

    @Test("keys can be written again after a clear and get fresh versions")
    func writeAfterClear() throws {
        let (wm, _) = makeStore()
        let old = try wm.put("ns", "k", 1, ttl: 100)
        _ = try wm.clear(ns: "ns", by: alice)
        let new = try wm.put("ns", "k", 2)
        #expect(new.version > old.version)
        #expect(try wm.value("ns", "k") == 2)
        #expect(wm.sweepExpired(max: 10).removed == 0)
    }
}
