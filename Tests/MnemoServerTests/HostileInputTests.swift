import Logging
import MnemoCore
import MnemoProtocol
import MnemoServer
import Testing

/// Whatever a client sends, the dispatcher answers with well-formed JSON-RPC (or nothing,
/// for a notification) and never traps: mutated requests, random bytes, deep nesting,
/// huge numbers. Deterministic (fixed seed), bounded in count.
@Suite("hostile input through the dispatcher")
struct HostileInputTests {
    /// A small deterministic generator (SplitMix64).
    struct Rng {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    }

    static let seeds: [String] = [
        #"{"jsonrpc":"2.0","id":1,"method":"wm.set","params":{"ns":"a/b","key":"k","value":{"x":[1,2,3]},"ttl_ms":1000}}"#,
        #"{"jsonrpc":"2.0","id":2,"method":"wm.get","params":{"ns":"a/b","key":"k"}}"#,
        #"{"jsonrpc":"2.0","id":3,"method":"wm.txn","params":{"compare":[{"ns":"a","key":"k","absent":true}],"ops":[{"op":"set","ns":"a","key":"k","value":1},{"op":"del","ns":"a","key":"z"}]}}"#,
        #"{"jsonrpc":"2.0","id":4,"method":"claim.acquire","params":{"ns":"a","resource":"r","ttl_ms":100,"wait_ms":5}}"#,
        #"{"jsonrpc":"2.0","id":5,"method":"task.transition","params":{"ns":"a","task":"t","to":"pending"}}"#,
        #"{"jsonrpc":"2.0","id":6,"method":"result.put","params":{"ns":"a","task":"t","idempotency_key":"i","value":[true,null]}}"#,
        #"{"jsonrpc":"2.0","id":7,"method":"inbox.post","params":{"ns":"a","to":"b","type":"t","content":"\u00e9\ud83d\ude00"}}"#,
        #"{"jsonrpc":"2.0","id":8,"method":"wm.list","params":{"ns":"a","prefix":"k","limit":10,"cursor":"k"}}"#,
        #"[{"jsonrpc":"2.0","id":9,"method":"admin.health"},{"jsonrpc":"2.0","method":"wm.del","params":{"ns":"a","key":"k"}}]"#,
        #"{"jsonrpc":"2.0","id":10,"method":"wm.expire","params":{"ns":"a","key":"k","ttl_ms":null}}"#,
    ]

    static let fragments: [String] = [
        "", "null", "true", "-", "1e999999", "-0", "18446744073709551616", "9223372036854775807", "-9223372036854775809",
        "\"", "\\u", "\\ud800", "{", "}", "[", "]", ",", ":", "\"ns\"", "\"a//b\"", "\u{0}", "\u{7f}", "\"\u{1}\"",
        String(repeating: "[", count: 70), String(repeating: "{\"a\":", count: 70), "1.5", "1e3", "0x10",
    ]

    func mutate(_ s: String, _ rng: inout Rng) -> [UInt8] {
        var bytes = Array(s.utf8)
        for _ in 0..<(1 + rng.below(4)) {
            guard !bytes.isEmpty else { break }
            let at = rng.below(bytes.count)
            switch rng.below(5) {
            case 0: bytes.remove(at: at)
            case 1: bytes.insert(UInt8(truncatingIfNeeded: rng.next()), at: at)
            case 2: bytes[at] = UInt8(truncatingIfNeeded: rng.next())
            case 3: bytes.insert(contentsOf: Array(Self.fragments[rng.below(Self.fragments.count)].utf8), at: at)
            default:
                let end = min(bytes.count, at + rng.below(8))
                bytes.removeSubrange(at..<end)
            }
        }
        return bytes.filter { $0 != 0x0A }  // one line
    }

    @Test func mutatedRequestsAlwaysGetWellFormedReplies() throws {
        let engine = try Engine(limits: Limits(), durability: .volatile, dataDir: "/nonexistent", logger: Logger(label: "fuzz"))
        let conn = InProcessConnection(engine: engine)
        _ = conn.handle(Array(#"{"jsonrpc":"2.0","id":0,"method":"session.hello","params":{"agent":"fuzz"}}"#.utf8))
        var rng = Rng(state: 0x5EED)
        var replies = 0
        for i in 0..<20_000 {
            let line = i % 10 == 9 ? (0..<rng.below(64)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }.filter { $0 != 0x0A }
                : mutate(Self.seeds[rng.below(Self.seeds.count)], &rng)
            let reply = Array(conn.handle(line))
            if reply.isEmpty { continue }  // a notification
            replies += 1
            let json = try #require(try? JSONParser.parse(reply), "reply to \(String(decoding: line, as: UTF8.self)) is not JSON")
            let one = json.arrayValue?.first ?? json
            #expect(one["jsonrpc"] == "2.0")
            #expect((one["result"] == nil) != (one["error"] == nil), "exactly one of result and error")
            if let error = one["error"] {
                #expect(error["code"]?.int64Value != nil)
                #expect(error["message"]?.stringValue != nil)
            }
        }
        #expect(replies > 10_000)
        // The engine still works normally afterwards.
        let ok = Array(conn.handle(Array(#"{"jsonrpc":"2.0","id":1,"method":"wm.set","params":{"ns":"after","key":"k","value":1}}"#.utf8)))
        #expect(try JSONParser.parse(ok)["result"]?["version"] != nil)
    }

    @Test func extremeNumbersAreRefusedNotTrapped() throws {
        let engine = try Engine(limits: Limits(), durability: .volatile, dataDir: "/nonexistent", logger: Logger(label: "fuzz"))
        let conn = InProcessConnection(engine: engine)
        _ = conn.handle(Array(#"{"jsonrpc":"2.0","id":0,"method":"session.hello","params":{"agent":"fuzz"}}"#.utf8))
        for n in ["9223372036854775807", "-9223372036854775808", "1e308", "1e400", "-1", "0", "3.5"] {
            for (method, params) in [("wm.set", #""ns":"a","key":"k","value":1,"ttl_ms":\#(n)"#),
                                     ("wm.set", #""ns":"a","key":"k","value":1,"if_version":\#(n)"#),
                                     ("claim.acquire", #""ns":"a","resource":"r","ttl_ms":\#(n),"wait_ms":\#(n)"#),
                                     ("claim.renew", #""ns":"a","resource":"r","token":\#(n),"ttl_ms":\#(n)"#),
                                     ("wm.list", #""ns":"a","limit":\#(n)"#),
                                     ("watch.subscribe", #""ns":"a","from_rev":\#(n)"#),
                                     ("inbox.read", #""ns":"a","limit":\#(n)"#)] {
                let line = #"{"jsonrpc":"2.0","id":1,"method":"\#(method)","params":{\#(params)}}"#
                let reply = try JSONParser.parse(Array(conn.handle(Array(line.utf8))))
                #expect(reply["result"] != nil || reply["error"]?["code"] != nil, "\(line)")
            }
        }
    }
}
