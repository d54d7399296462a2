import MnemoCore
import MnemoProtocol
import Testing

@Suite("WorkingMemory: idempotent results")
struct WorkingMemoryResultTests {
    static func parse(_ text: String) throws -> JSON { try JSONParser.parse(text) }

    @Test("the first put stores the value with the writer's provenance")
    func firstPut() throws {
        let (wm, time) = makeStore()
        try wm.put("ns", "noise", 1)
        let value = try Self.parse(#"{"answer":42,"list":[1,"two",null]}"#)
        let (stored, r) = try wm.putResult(ns: "ns", task: "t1", idempotencyKey: "key-1", value: value, by: alice)
        #expect(stored)
        #expect(r.task == "t1")
        #expect(r.value == value.bytes)
        #expect(r.provenance.agent == "a")
        #expect(r.provenance.principal == "local")
        #expect(r.provenance.rev == 2)
        #expect(r.provenance.at == time.nowMs())
        #expect(r.provenance.task == "t1")
        #expect(wm.revision == 2)
        #expect(wm.stats.results == 1)
    }

    @Test("an identical replay (by anyone, later) returns stored false with the original result and provenance")
    func identicalReplay() throws {
        let (wm, time) = makeStore()
        let value = try Self.parse(#"{"a":[1,2,3]}"#)
        let (_, first) = try wm.putResult(ns: "ns", task: "t", idempotencyKey: "k", value: value, by: alice)
        time.advance(ms: 5000)
        let revBefore = wm.revision
        for caller in [alice, bob] {
            let (stored, again) = try wm.putResult(ns: "ns", task: "t", idempotencyKey: "k", value: value, by: caller)
            #expect(!stored)
            #expect(again == first)
        }
        #expect(wm.revision == revBefore)
        #expect(wm.stats.results == 1)
    }

    @Test("semantically equal JSON replays: member order and number spelling do not matter",
          arguments: [
            (#"{"a":1,"b":{"c":[1,2],"d":"x"}}"#, #"{"b":{"d":"x","c":[1.0,2e0]},"a":1}"#),
            ("1", "1.0"),
            ("100", "1e2"),
            ("0.5", "5e-1"),
            ("-3", "-3.000"),
            (#"[{"x":1,"y":2}]"#, #"[{"y":2,"x":1}]"#),
          ])
    func semanticReplay(original: String, replay: String) throws {
        let (wm, _) = makeStore()
        let (_, first) = try wm.putResult(ns: "ns", task: "t", idempotencyKey: "k", value: try Self.parse(original), by: alice)
        let (stored, again) = try wm.putResult(ns: "ns", task: "t", idempotencyKey: "k", value: try Self.parse(replay), by: bob)
        #expect(!stored)
        #expect(again == first)
        #expect(again.value == (try Self.parse(original)).bytes)  // the stored spelling is returned
    }

    @Test("a different value under the same key is IDEMPOTENCY_MISMATCH naming the key and stored task; nothing changes",
          arguments: [
            (#"{"a":1}"#, #"{"a":2}"#),
            (#"{"a":1}"#, #"{"a":1,"b":2}"#),
            (#"{"a":1,"b":2}"#, #"{"a":1}"#),
            ("[1,2]", "[2,1]"),
            ("1", #""1""#),
            ("1", "1.5"),
            ("null", "false"),
            ("0", "null"),
            ("9007199254740993", "9007199254740992"),
            ("12345678901234567890", "12345678901234567891"),
            ("0.1", "0.10000000000000001"),
          ])
    func differentValue(original: String, other: String) throws {
        let (wm, _) = makeStore()
        let (_, first) = try wm.putResult(ns: "ns", task: "t", idempotencyKey: "k", value: try Self.parse(original), by: alice)
        let revBefore = wm.revision
        let e = try #require(wireError { () throws(WireError) in
            try wm.putResult(ns: "ns", task: "t", idempotencyKey: "k", value: try! Self.parse(other), by: alice)
        })
        #expect(e.appCode == .idempotencyMismatch)
        #expect(e.detail("idempotency_key") == "k")
        #expect(e.detail("task") == "t")
        #expect(wm.revision == revBefore)
        // the first result is still the one stored
        let (stored, again) = try wm.putResult(ns: "ns", task: "t", idempotencyKey: "k", value: try Self.parse(original), by: alice)
        #expect(!stored)
        #expect(again == first)
    }

    @Test("the same value for another task under the same key is IDEMPOTENCY_MISMATCH naming the stored task")
    func differentTask() throws {
        let (wm, _) = makeStore()
        _ = try wm.putResult(ns: "ns", task: "t1", idempotencyKey: "k", value: 1, by: alice)
        let e = try #require(wireError { () throws(WireError) in
            try wm.putResult(ns: "ns", task: "t2", idempotencyKey: "k", value: 1, by: alice)
        })
        #expect(e.appCode == .idempotencyMismatch)
        #expect(e.detail("task") == "t1")
        #expect(wm.stats.results == 1)
    }

    @Test("namespaces are separate: the same key stores independently in each (sub-namespaces too)")
    func namespaces() throws {
        let (wm, _) = makeStore()
        let (s1, r1) = try wm.putResult(ns: "a", task: "t", idempotencyKey: "k", value: 1, by: alice)
        let (s2, r2) = try wm.putResult(ns: "b", task: "other", idempotencyKey: "k", value: 2, by: bob)
        let (s3, r3) = try wm.putResult(ns: "a/sub", task: "t", idempotencyKey: "k", value: 3, by: bob)
        #expect(s1 && s2 && s3)
        #expect(r1.value == JSON.int(1).bytes)
        #expect(r2.value == JSON.int(2).bytes)
        #expect(r3.value == JSON.int(3).bytes)
        #expect(wm.stats.results == 3)
        // each replays its own
        #expect(try wm.putResult(ns: "b", task: "other", idempotencyKey: "k", value: 2, by: alice) == (false, r2))
    }

    @Test("after the retention and a sweep the key is forgotten and can be stored anew; before it, it cannot")
    func retention() throws {
        let time = ManualTime()
        let wm = WorkingMemory(limits: Limits(), time: time, resultRetentionMs: 1000)
        let (_, first) = try wm.putResult(ns: "ns", task: "t", idempotencyKey: "k", value: 1, by: alice)
        #expect(first.expiresAt == time.nowMs() + 1000)
        time.advance(ms: 999)
        #expect(wm.sweepExpired(max: 100).removed == 0)
        #expect(wireError { () throws(WireError) in
            try wm.putResult(ns: "ns", task: "t", idempotencyKey: "k", value: 2, by: alice)
        }?.appCode == .idempotencyMismatch)
        time.advance(ms: 1)
        #expect(wm.sweepExpired(max: 100).removed == 1)
        #expect(wm.stats.results == 0)
        let (stored, r) = try wm.putResult(ns: "ns", task: "t2", idempotencyKey: "k", value: 2, by: bob)
        #expect(stored)
        #expect(r.task == "t2")
        #expect(r.provenance.agent == "b")
        #expect(r.provenance.rev > first.provenance.rev)
        #expect(r.expiresAt == time.nowMs() + 1000)
    }

    @Test("past the retention the key can be stored anew even before the sweep, and the late sweep keeps the new result")
    func retentionWithoutSweep() throws {
        let time = ManualTime()
        let wm = WorkingMemory(limits: Limits(), time: time, resultRetentionMs: 1000)
        _ = try wm.putResult(ns: "ns", task: "t", idempotencyKey: "k", value: 1, by: alice)
        time.advance(ms: 1000)
        let (stored, r) = try wm.putResult(ns: "ns", task: "t", idempotencyKey: "k", value: 2, by: alice)
        #expect(stored)
        #expect(wm.sweepExpired(max: 100).removed == 0)
        #expect(try wm.putResult(ns: "ns", task: "t", idempotencyKey: "k", value: 2, by: alice) == (false, r))
    }

    @Test("an empty or oversized task or idempotency key is -32602; an oversized value is LIMIT_EXCEEDED")
    func validation() throws {
        let (wm, _) = makeStore(try limits("max_value_bytes", 64))
        let long = String(repeating: "x", count: Limits.maxIdentifierBytes + 1)
        for (task, key, field) in [("", "k", "task"), (long, "k", "task"), ("t", "", "idempotency_key"), ("t", long, "idempotency_key")] {
            let e = try #require(wireError { () throws(WireError) in
                try wm.putResult(ns: "ns", task: task, idempotencyKey: key, value: 1, by: alice)
            })
            #expect(e.code == -32602)
            #expect(e.detail("field") == .string(field))
        }
        let e = try #require(wireError { () throws(WireError) in
            try wm.putResult(ns: "ns", task: "t", idempotencyKey: "k", value: .string(String(repeating: "v", count: 100)), by: alice)
        })
        #expect(e.appCode == .limitExceeded)
        #expect(e.detail("limit") == "max_value_bytes")
        #expect(wm.stats.results == 0)
        #expect(wm.revision == 0)
    }
}
