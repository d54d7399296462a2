import Foundation
import MnemoCore
import MnemoProtocol
import Testing

@Suite("WorkingMemory: list")
struct WorkingMemoryListTests {
    @Test("keys come in byte order, not insertion or Unicode-collation order")
    func byteOrder() throws {
        let (wm, _) = makeStore()
        for key in ["b", "é", "a", "B", "aa", "a/b", "~", "a-", "10", "9", "Z"] { try wm.put("ns", key, 1) }
        let page = wm.list(ns: "ns", prefix: nil, limit: 100, cursor: nil)
        #expect(page.items.map(\.key) == ["10", "9", "B", "Z", "a", "a-", "a/b", "aa", "b", "~", "é"])
        #expect(page.cursor == nil)
    }

    @Test("items carry each key's version and expiry")
    func itemFields() throws {
        let (wm, time) = makeStore()
        let a = try wm.put("ns", "a", 1)
        let b = try wm.put("ns", "b", 1, ttl: 500)
        let page = wm.list(ns: "ns", prefix: nil, limit: 10, cursor: nil)
        #expect(page.items.map(\.key) == ["a", "b"])
        #expect(page.items.map(\.version) == [a.version, b.version])
        #expect(page.items.map(\.expiresAt) == [nil, time.nowMs() + 500])
    }

    @Test("prefix keeps only keys that start with it, byte-wise")
    func prefix() throws {
        let (wm, _) = makeStore()
        for key in ["a", "ab", "abc", "abd", "ac", "b", "aB", "x"] { try wm.put("ns", key, 1) }
        #expect(wm.allKeys("ns", prefix: "ab") == ["ab", "abc", "abd"])
        #expect(wm.allKeys("ns", prefix: "a") == ["a", "aB", "ab", "abc", "abd", "ac"])
        #expect(wm.allKeys("ns", prefix: "abc") == ["abc"])
        #expect(wm.allKeys("ns", prefix: "abcd") == [])
        #expect(wm.allKeys("ns", prefix: "zz") == [])
        #expect(wm.allKeys("ns", prefix: "") == ["a", "aB", "ab", "abc", "abd", "ac", "b", "x"])
    }

    @Test("pages cover every key exactly once: 250 keys, limit 100 -> 100, 100, 50 without a cursor")
    func pagination() throws {
        let (wm, _) = makeStore()
        var rng = SystemRandomNumberGenerator()
        let keys = (0..<250).map { String(format: "key-%03d", $0) }
        for key in keys.shuffled(using: &rng) { try wm.put("ns", key, .string(key)) }
        let p1 = wm.list(ns: "ns", prefix: nil, limit: 100, cursor: nil)
        let c1 = try #require(p1.cursor)
        let p2 = wm.list(ns: "ns", prefix: nil, limit: 100, cursor: c1)
        let c2 = try #require(p2.cursor)
        let p3 = wm.list(ns: "ns", prefix: nil, limit: 100, cursor: c2)
        #expect(p1.items.count == 100)
        #expect(p2.items.count == 100)
        #expect(p3.items.count == 50)
        #expect(p3.cursor == nil)
        #expect((p1.items + p2.items + p3.items).map(\.key) == keys)
    }

    @Test("no cursor when the last page is exactly full", arguments: [1, 5, 10])
    func exactPages(_ limit: Int) throws {
        let (wm, _) = makeStore()
        for i in 0..<10 { try wm.put("ns", "k\(i)", 1) }
        var cursor: String? = nil
        var got: [String] = []
        var pages = 0
        repeat {
            let page = wm.list(ns: "ns", prefix: nil, limit: limit, cursor: cursor)
            #expect(page.items.count == limit)
            got += page.items.map(\.key)
            cursor = page.cursor
            pages += 1
        } while cursor != nil && pages < 100
        #expect(pages == 10 / limit)
        #expect(got == (0..<10).map { "k\($0)" })
    }

    @Test("pagination with a prefix stays inside the prefix")
    func paginationWithPrefix() throws {
        let (wm, _) = makeStore()
        for i in 0..<150 { try wm.put("ns", String(format: "p/%03d", i), 1) }
        for i in 0..<50 { try wm.put("ns", String(format: "q/%03d", i), 1) }
        try wm.put("ns", "o", 1)
        let p1 = wm.list(ns: "ns", prefix: "p/", limit: 100, cursor: nil)
        let cursor: String = try #require(p1.cursor)
        let p2 = wm.list(ns: "ns", prefix: "p/", limit: 100, cursor: cursor)
        #expect(p2.cursor == nil)
        #expect((p1.items + p2.items).map(\.key) == (0..<150).map { String(format: "p/%03d", $0) })
    }

    @Test("a cursor whose key was deleted in between still resumes right after it")
    func deletedCursor() throws {
        let (wm, _) = makeStore()
        for i in 0..<6 { try wm.put("ns", "k\(i)", 1) }
        let p1 = wm.list(ns: "ns", prefix: nil, limit: 3, cursor: nil)
        #expect(p1.cursor == "k2")
        _ = try wm.delete(ns: "ns", key: "k2", by: alice)
        try wm.put("ns", "k0a", 1)  // before the cursor: not seen
        try wm.put("ns", "k3a", 1)  // after the cursor: seen
        let p2 = wm.list(ns: "ns", prefix: nil, limit: 10, cursor: "k2")
        #expect(p2.items.map(\.key) == ["k3", "k3a", "k4", "k5"])
        #expect(p2.cursor == nil)
    }

    @Test("expired keys are skipped, and a page followed only by expired keys has no cursor")
    func expiredSkipped() throws {
        let (wm, time) = makeStore()
        try wm.put("ns", "a", 1)
        try wm.put("ns", "b", 1, ttl: 10)
        try wm.put("ns", "c", 1)
        try wm.put("ns", "d", 1, ttl: 10)
        try wm.put("ns", "e", 1, ttl: 10)
        time.advance(ms: 10)
        #expect(wm.allKeys("ns") == ["a", "c"])
        let p1 = wm.list(ns: "ns", prefix: nil, limit: 1, cursor: nil)
        #expect(p1.items.map(\.key) == ["a"])
        #expect(p1.cursor == "a")
        let p2 = wm.list(ns: "ns", prefix: nil, limit: 1, cursor: "a")
        #expect(p2.items.map(\.key) == ["c"])
        #expect(p2.cursor == nil)
    }

    @Test("an unknown namespace lists as empty; a parent does not list its children's keys")
    func unknownNamespace() throws {
        let (wm, _) = makeStore()
        #expect(wm.list(ns: "nope", prefix: nil, limit: 10, cursor: nil).items.isEmpty)
        #expect(wm.list(ns: "nope", prefix: nil, limit: 10, cursor: nil).cursor == nil)
        try wm.put("t/1", "k", 1)
        #expect(wm.allKeys("t") == [])
        #expect(wm.allKeys("t/1") == ["k"])
        #expect(wm.allKeys("t/1/x") == [])
    }

    @Test("listing sees writes and deletes made after an earlier listing")
    func cacheInvalidation() throws {
        let (wm, _) = makeStore()
        try wm.put("ns", "b", 1)
        #expect(wm.allKeys("ns") == ["b"])
        try wm.put("ns", "a", 1)
        #expect(wm.allKeys("ns") == ["a", "b"])
        _ = try wm.delete(ns: "ns", key: "b", by: alice)
        #expect(wm.allKeys("ns") == ["a"])
        try wm.put("ns", "a", 2)  // rewrite: same key set
        _ = try wm.expire(ns: "ns", key: "a", ttlMs: 100, by: alice)
        #expect(wm.allKeys("ns") == ["a"])
        _ = try wm.txn(compare: [], ops: [.set(ns: "ns", key: "c", value: bytes(1), ttlMs: nil), .del(ns: "ns", key: "a")],
                       by: alice)
        #expect(wm.allKeys("ns") == ["c"])
    }
}
