import MnemoCore
import MnemoProtocol
import Testing

@Suite("WorkingMemory: compare-and-set guards")
struct WorkingMemoryGuardTests {
    /// Everything a failed write must leave as it was.
    struct Snapshot: Equatable {
        var value: [UInt8]?
        var version: Int64?
        var revision: Int64
        var keys: Int
        var bytes: Int
        init(_ wm: WorkingMemory, _ ns: String = "ns", _ key: String = "k") {
            let item = wm.get(ns: ns, key: key)
            value = item?.value
            version = item?.version
            revision = wm.revision
            keys = wm.stats.keys
            bytes = wm.stats.bytes
        }
    }

    @Test("ifVersion with the current version succeeds")
    func ifVersionCurrent() throws {
        let (wm, _) = makeStore()
        let r1 = try wm.put("ns", "k", 1)
        let r2 = try wm.put("ns", "k", 2, ifVersion: r1.version)
        #expect(r2.version > r1.version)
        #expect(try wm.value("ns", "k") == 2)
        let r3 = try wm.put("ns", "k", 3, ifVersion: r2.version)
        #expect(try wm.value("ns", "k") == 3)
        #expect(r3.version > r2.version)
    }

    @Test("ifVersion with a stale version fails with CONFLICT carrying the current version; nothing changes")
    func ifVersionStale() throws {
        let (wm, _) = makeStore()
        let r1 = try wm.put("ns", "k", 1)
        let r2 = try wm.put("ns", "k", 2)
        let before = Snapshot(wm)
        let e = try #require(wireError { () throws(WireError) in try wm.put("ns", "k", 3, ifVersion: r1.version) })
        #expect(e.code == -32000)
        #expect(e.appCode == .conflict)
        #expect(e.detail("version") == .int(r2.version))
        #expect(e.detail("ns") == "ns")
        #expect(e.detail("key") == "k")
        #expect(Snapshot(wm) == before)
    }

    @Test("ifVersion on a missing key fails with CONFLICT and version null; nothing is created")
    func ifVersionAbsent() throws {
        let (wm, _) = makeStore()
        try wm.put("ns", "other", 1)
        let before = Snapshot(wm)
        let e = try #require(wireError { () throws(WireError) in try wm.put("ns", "k", 1, ifVersion: 1) })
        #expect(e.appCode == .conflict)
        #expect(e.detail("version") == .null)
        #expect(Snapshot(wm) == before)
        #expect(wm.get(ns: "ns", key: "k") == nil)
    }

    @Test("ifAbsent creates a missing key and fails with CONFLICT on a present one")
    func ifAbsent() throws {
        let (wm, _) = makeStore()
        let r = try wm.put("ns", "k", 1, ifAbsent: true)
        #expect(try wm.value("ns", "k") == 1)
        let before = Snapshot(wm)
        let e = try #require(wireError { () throws(WireError) in try wm.put("ns", "k", 2, ifAbsent: true) })
        #expect(e.appCode == .conflict)
        #expect(e.detail("version") == .int(r.version))
        #expect(Snapshot(wm) == before)
    }

    @Test("ifAbsent succeeds again once the key was deleted or expired")
    func ifAbsentAfterDeleteOrExpiry() throws {
        let (wm, time) = makeStore()
        try wm.put("ns", "k", 1)
        _ = try wm.delete(ns: "ns", key: "k", by: alice)
        try wm.put("ns", "k", 2, ttl: 10, ifAbsent: true)
        time.advance(ms: 10)
        try wm.put("ns", "k", 3, ifAbsent: true)
        #expect(try wm.value("ns", "k") == 3)
    }

    @Test("ifVersion and ifAbsent together are -32602, whether or not the key exists")
    func bothGuards() throws {
        let (wm, _) = makeStore()
        let e1 = try #require(wireError { () throws(WireError) in try wm.put("ns", "k", 1, ifVersion: 1, ifAbsent: true) })
        #expect(e1.code == -32602)
        #expect(e1.detail("field") == "if_absent")
        #expect(wm.get(ns: "ns", key: "k") == nil)
        let r = try wm.put("ns", "k", 1)
        let before = Snapshot(wm)
        let e2 = try #require(wireError { () throws(WireError) in
            try wm.put("ns", "k", 2, ifVersion: r.version, ifAbsent: true)
        })
        #expect(e2.code == -32602)
        #expect(Snapshot(wm) == before)
    }

    @Test("a deleted then recreated key never gets a version it had before (no ABA)")
    func noABA() throws {
        let (wm, _) = makeStore()
        var seen = Set<Int64>()
        var last: Int64 = 0
        for round in 0..<200 {
            let r = try wm.put("ns", "k", .int(round))
            #expect(!seen.contains(r.version))
            #expect(r.version > last)
            seen.insert(r.version)
            last = r.version
            if round % 2 == 0 {
                _ = try wm.delete(ns: "ns", key: "k", by: alice)
            } else {
                _ = try wm.clear(ns: "ns", by: alice)
            }
        }
        // a version read before the delete is useless after the recreate
        let old = try wm.put("ns", "k", "old")
        _ = try wm.delete(ns: "ns", key: "k", by: alice)
        let new = try wm.put("ns", "k", "new")
        #expect(new.version != old.version)
        let e = try #require(wireError { () throws(WireError) in try wm.put("ns", "k", "abA", ifVersion: old.version) })
        #expect(e.appCode == .conflict)
        #expect(e.detail("version") == .int(new.version))
        #expect(try wm.value("ns", "k") == "new")
    }

    @Test("a recreated key's version is above every version of the store so far")
    func recreateAfterOtherWrites() throws {
        let (wm, time) = makeStore()
        let first = try wm.put("ns", "k", 1, ttl: 5)
        for i in 0..<10 { try wm.put("ns", "o\(i)", 1) }
        time.advance(ms: 5)  // k expires
        #expect(wm.get(ns: "ns", key: "k") == nil)
        let again = try wm.put("ns", "k", 2)
        #expect(again.version > first.version + 10)
        #expect(again.version == wm.revision)
    }
}
