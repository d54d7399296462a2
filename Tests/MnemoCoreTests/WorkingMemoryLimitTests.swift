import MnemoCore
import MnemoProtocol
import Testing

@Suite("WorkingMemory: limits")
struct WorkingMemoryLimitTests {
    /// A JSON string value whose compact form is exactly `n` bytes.
    static func value(bytes n: Int) -> JSON { .string(String(repeating: "x", count: n - 2)) }

    @Test("a value of exactly maxValueBytes is stored, one byte more is LIMIT_EXCEEDED max_value_bytes")
    func valueSize() throws {
        let (wm, _) = makeStore(try limits("max_value_bytes", 1024))
        try wm.put("ns", "ok", Self.value(bytes: 1024))
        let e = try #require(wireError { () throws(WireError) in try wm.put("ns", "big", Self.value(bytes: 1025)) })
        #expect(e.appCode == .limitExceeded)
        #expect(e.detail("limit") == "max_value_bytes")
        #expect(e.detail("max") == .int(1024))
        #expect(wm.get(ns: "ns", key: "big") == nil)
        // an over-size rewrite leaves the old value in place
        _ = wireError { () throws(WireError) in try wm.put("ns", "ok", Self.value(bytes: 2000)) }
        #expect(wm.get(ns: "ns", key: "ok")?.value.count == 1024)
    }

    @Test("the default value limit is 512 KiB")
    func defaultValueSize() throws {
        let (wm, _) = makeStore()
        try wm.put("ns", "ok", Self.value(bytes: 512 << 10))
        let e = try #require(wireError { () throws(WireError) in try wm.put("ns", "big", Self.value(bytes: (512 << 10) + 1)) })
        #expect(e.detail("limit") == "max_value_bytes")
    }

    @Test("keys: exactly maxKeyBytes (in bytes, not characters) is fine; longer or empty is -32602 naming key")
    func keySize() throws {
        let (wm, _) = makeStore()
        let max = Limits().maxKeyBytes
        try wm.put("ns", String(repeating: "k", count: max), 1)
        try wm.put("ns", String(repeating: "é", count: max / 2), 1)
        for bad in ["", String(repeating: "k", count: max + 1), String(repeating: "é", count: max / 2 + 1)] {
            let e = try #require(wireError { () throws(WireError) in try wm.put("ns", bad, 1) })
            #expect(e.code == -32602)
            #expect(e.detail("field") == "key")
        }
        #expect(wm.stats.keys == 2)
    }

    @Test("a smaller configured key limit is enforced")
    func configuredKeySize() throws {
        let (wm, _) = makeStore(try limits("max_key_bytes", 16))
        try wm.put("ns", String(repeating: "k", count: 16), 1)
        let e = try #require(wireError { () throws(WireError) in try wm.put("ns", String(repeating: "k", count: 17), 1) })
        #expect(e.detail("field") == "key")
    }

    @Test("the store budget: fill until LIMIT_EXCEEDED max_working_bytes, deleting frees room again")
    func storeBudget() throws {
        let budget = 1 << 20
        let (wm, _) = makeStore(try limits("max_working_bytes", budget))
        let value = Self.value(bytes: 8000)
        var stored = 0
        var failure: WireError? = nil
        while failure == nil && stored < 10_000 {
            do {
                try wm.put("ns", "k\(stored)", value)
                stored += 1
                #expect(wm.stats.bytes <= budget)
            } catch {
                failure = error
            }
        }
        let e = try #require(failure)
        #expect(e.appCode == .limitExceeded)
        #expect(e.detail("limit") == "max_working_bytes")
        #expect(e.detail("max") == .int(budget))
        #expect(stored >= 100)  // 8000-byte values: the budget is mostly payload
        #expect(stored <= budget / 8000)

        // a refused write changed nothing
        let revision = wm.revision
        let bytesUsed = wm.stats.bytes
        _ = wireError { () throws(WireError) in try wm.put("ns", "k\(stored)", value) }
        #expect(wm.revision == revision)
        #expect(wm.stats.bytes == bytesUsed)
        #expect(wm.stats.keys == stored)

        // rewriting a key with a value of the same size needs no new room
        try wm.put("ns", "k0", Self.value(bytes: 8000))
        // but growing one does
        _ = wireError { () throws(WireError) in try wm.put("ns", "k0", Self.value(bytes: 16_000)) }

        // deleting frees room: the refused write now succeeds
        _ = try wm.delete(ns: "ns", key: "k1", by: alice)
        try wm.put("ns", "k\(stored)", value)
        #expect(wm.stats.keys == stored)

        // clearing frees everything
        _ = try wm.clear(ns: "ns", by: alice)
        #expect(wm.stats.bytes == 0)
        for i in 0..<stored { try wm.put("ns", "again\(i)", value) }
    }

    @Test("expired keys stop counting against the budget once swept")
    func budgetAfterExpiry() throws {
        let (wm, time) = makeStore(try limits("max_working_bytes", 1 << 20))
        let value = Self.value(bytes: 8000)
        var n = 0
        while (try? wm.put("ns", "t\(n)", value, ttl: 100)) != nil { n += 1 }
        #expect(n > 0)
        _ = wireError { () throws(WireError) in try wm.put("ns", "more", value) }
        time.advance(ms: 100)
        _ = wm.sweepExpired(max: 100_000)
        #expect(wm.stats.bytes == 0)
        try wm.put("ns", "more", value)
    }

    @Test("a txn over the budget is refused as a whole")
    func txnBudget() throws {
        let (wm, _) = makeStore(try limits("max_working_bytes", 1 << 20))
        // 128 ops (the default max_txn_ops) of 9000 bytes: over 1 MiB together
        let ops = (0..<128).map { WorkingMemory.Op.set(ns: "ns", key: "k\($0)", value: Self.value(bytes: 9000).bytes, ttlMs: nil) }
        let e = try #require(wireError { () throws(WireError) in try wm.txn(compare: [], ops: ops, by: alice) })
        #expect(e.detail("limit") == "max_working_bytes")
        #expect(wm.stats.keys == 0)
        #expect(wm.revision == 0)
        _ = try wm.txn(compare: [], ops: Array(ops.prefix(50)), by: alice)
        #expect(wm.stats.keys == 50)
    }
}
