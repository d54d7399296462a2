import MnemoCore
import MnemoProtocol
import Testing

@Suite("WorkingMemory: sweepExpired")
struct WorkingMemorySweepTests {
    @Test("sweep removes exactly the expired keys among expired, live, re-timed, rewritten and deleted ones")
    func exactlyExpired() throws {
        let (wm, time) = makeStore()
        try wm.put("ns", "expires", 1, ttl: 100)
        try wm.put("ns", "later", 1, ttl: 200)
        try wm.put("ns", "persistent", 1)
        try wm.put("ns", "retimed-later", 1, ttl: 100)
        _ = try wm.expire(ns: "ns", key: "retimed-later", ttlMs: 1000, by: alice)
        try wm.put("ns", "retimed-earlier", 1, ttl: 1000)
        _ = try wm.expire(ns: "ns", key: "retimed-earlier", ttlMs: 50, by: alice)
        try wm.put("ns", "made-persistent", 1, ttl: 100)
        _ = try wm.expire(ns: "ns", key: "made-persistent", ttlMs: nil, by: alice)
        try wm.put("ns", "rewritten-plain", 1, ttl: 100)
        try wm.put("ns", "rewritten-plain", 2)
        try wm.put("ns", "rewritten-longer", 1, ttl: 100)
        try wm.put("ns", "rewritten-longer", 2, ttl: 1000)
        try wm.put("ns", "deleted", 1, ttl: 100)
        _ = try wm.delete(ns: "ns", key: "deleted", by: alice)
        try wm.put("ns", "recreated", 1, ttl: 100)
        _ = try wm.delete(ns: "ns", key: "recreated", by: alice)
        try wm.put("ns", "recreated", 2, ttl: 1000)
        try wm.put("other", "expires", 1, ttl: 100)
        #expect(wm.stats.keys == 10)

        time.advance(ms: 150)
        let bytesBefore = wm.stats.bytes
        let revBefore = wm.revision
        let first = wm.sweepExpired(max: 1000)
        #expect(first.removed == 3)  // expires, retimed-earlier, other/expires
        #expect(!first.more)
        #expect(wm.stats.keys == 7)
        #expect(wm.stats.bytes < bytesBefore)
        #expect(wm.stats.expired == 3)
        #expect(wm.revision == revBefore + 3)
        #expect(wm.allKeys("ns") == ["later", "made-persistent", "persistent", "recreated", "retimed-later",
                                     "rewritten-longer", "rewritten-plain"])
        #expect(wm.allKeys("other") == [])
        #expect(wm.stats.namespaces == 1)

        time.advance(ms: 50)  // t = 200
        #expect(wm.sweepExpired(max: 1000).removed == 1)  // later
        time.advance(ms: 900)  // t = 1100
        #expect(wm.sweepExpired(max: 1000).removed == 3)  // retimed-later, rewritten-longer, recreated
        #expect(wm.allKeys("ns") == ["made-persistent", "persistent", "rewritten-plain"])
        #expect(wm.stats.keys == 3)
        time.advance(ms: 1_000_000)
        #expect(wm.sweepExpired(max: 1000) == (removed: 0, more: false))
        #expect(wm.stats.keys == 3)
    }

    @Test("sweep respects max and reports whether more are due")
    func respectsMax() throws {
        let (wm, time) = makeStore()
        for i in 0..<10 { try wm.put("ns", "k\(i)", .int(i), ttl: 100) }
        try wm.put("ns", "live", 1, ttl: 10_000)
        time.advance(ms: 100)
        #expect(wm.sweepExpired(max: 3) == (removed: 3, more: true))
        #expect(wm.stats.keys == 8)
        #expect(wm.sweepExpired(max: 3) == (removed: 3, more: true))
        #expect(wm.sweepExpired(max: 3) == (removed: 3, more: true))
        #expect(wm.sweepExpired(max: 3) == (removed: 1, more: false))
        #expect(wm.sweepExpired(max: 3) == (removed: 0, more: false))
        #expect(wm.allKeys("ns") == ["live"])
        #expect(wm.stats.expired == 10)
    }

    @Test("sweep with max equal to the number due drains them and reports nothing more")
    func exactMax() throws {
        let (wm, time) = makeStore()
        for i in 0..<5 { try wm.put("ns", "k\(i)", 1, ttl: 10) }
        time.advance(ms: 10)
        #expect(wm.sweepExpired(max: 5) == (removed: 5, more: false))
    }

    @Test("sweep on an empty store or with nothing due does nothing")
    func nothingDue() throws {
        let (wm, _) = makeStore()
        #expect(wm.sweepExpired(max: 10) == (removed: 0, more: false))
        try wm.put("ns", "k", 1, ttl: 100)
        #expect(wm.sweepExpired(max: 10) == (removed: 0, more: false))
        #expect(wm.stats.keys == 1)
    }

    @Test("stats bytes return to zero once everything expired is swept")
    func bytesDrop() throws {
        let (wm, time) = makeStore()
        for i in 0..<100 { try wm.put("ns/\(i % 7)", "key-\(i)", .string(String(repeating: "x", count: i)), ttl: 100) }
        #expect(wm.stats.keys == 100)
        time.advance(ms: 100)
        var total = 0
        while true {
            let r = wm.sweepExpired(max: 16)
            total += r.removed
            if !r.more { break }
        }
        #expect(total == 100)
        #expect(wm.stats.keys == 0)
        #expect(wm.stats.bytes == 0)
        #expect(wm.stats.namespaces == 0)
    }

    @Test("one TTL key rewritten 10_000 times: stale queue entries do not break expiry")
    func massOfStaleEntries() throws {
        let (wm, time) = makeStore()
        var last: WorkingMemory.WriteResult? = nil
        for i in 0..<10_000 {
            last = try wm.put("ns", "hot", .int(i), ttl: 1000)
            time.advance(ms: 1)
        }
        let expiresAt = try #require(last?.expiresAt)
        #expect(try wm.value("ns", "hot") == 9999)
        // nothing is due before the last write's expiry, although 10_000 entries were queued
        time.advance(ms: expiresAt - time.nowMs() - 1)
        #expect(wm.sweepExpired(max: 100_000).removed == 0)
        #expect(try wm.value("ns", "hot") == 9999)
        time.advance(ms: 1)
        let r = wm.sweepExpired(max: 100_000)
        #expect(r.removed == 1)
        #expect(!r.more)
        #expect(wm.stats.keys == 0)
        #expect(wm.stats.bytes == 0)
    }

    @Test("every write of a TTL key is swept once it expires, however many writes came before")
    func everyWriteTracked() throws {
        let (wm, time) = makeStore()
        var lost: [Int] = []
        for i in 0..<3000 {
            // a long TTL whose queue entry goes stale, then a short one that must fire
            try wm.put("ns", "k", .int(i), ttl: 1_000_000)
            _ = try wm.expire(ns: "ns", key: "k", ttlMs: 1, by: alice)
            time.advance(ms: 1)
            if wm.sweepExpired(max: 10).removed != 1 {
                lost.append(i)
                _ = try wm.delete(ns: "ns", key: "k", by: alice)
            }
        }
        do {
            #expect(lost == [])
        }
        #expect(wm.stats.keys == 0)
    }

    @Test("a key rewritten with a TTL around a queue rebuild is still swept")
    func rewriteAcrossRebuild() throws {
        // Rewrite counts around the point where stale entries force a rebuild of the queue.
        var failures: [Int] = []
        for writes in 1020...1040 {
            let (wm, time) = makeStore()
            for i in 0..<writes { try wm.put("ns", "k", .int(i), ttl: 100) }
            time.advance(ms: 100)
            if wm.sweepExpired(max: 10).removed != 1 || wm.stats.keys != 0 { failures.append(writes) }
        }
        do {
            #expect(failures == [])
        }
    }
}
