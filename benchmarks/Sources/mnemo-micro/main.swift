import Dispatch
import Foundation
import Logging
import MnemoCore
import MnemoProtocol
import MnemoServer

// Micro benchmarks of the request hot path, in-process (no sockets): nanoseconds per
// operation for decoding, and for whole requests through the dispatcher.
// The machine is shared and noisy: each figure is the best of five runs.
func bench(_ name: String, _ n: Int, _ body: () -> Void) {
    for _ in 0..<(n / 10) { body() }  // warm up
    var best = Double.infinity
    for _ in 0..<5 {
        let t0 = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<(n / 5) { body() }
        best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / Double(n / 5))
    }
    print(name.padding(toLength: 28, withPad: " ", startingAt: 0), String(format: "%8.0f ns/op", best))
}

let n = Int(CommandLine.arguments.dropFirst().first ?? "") ?? 500_000
let engine = try Engine(limits: Limits(), durability: .volatile, dataDir: "/nonexistent", logger: Logger(label: "micro"))
let conn = InProcessConnection(engine: engine)
func line(_ s: String) -> [UInt8] { Array(s.utf8) }
_ = conn.handle(line(#"{"jsonrpc":"2.0","id":0,"method":"session.hello","params":{"agent":"micro"}}"#))
let value = String(repeating: "v", count: 100)
let set = line(#"{"jsonrpc":"2.0","id":1,"method":"wm.set","params":{"ns":"bench","key":"k1","value":"\#(value)"}}"#)
let get = line(#"{"jsonrpc":"2.0","id":1,"method":"wm.get","params":{"ns":"bench","key":"k1"}}"#)
let health = line(#"{"jsonrpc":"2.0","id":1,"method":"admin.health"}"#)
_ = conn.handle(set)
var sink = 0
let only = CommandLine.arguments.dropFirst(2).first
if only == "health" {
    for _ in 0..<n { sink += conn.handle(health).count }
    print(sink)
    exit(0)
}
bench("decode wm.get line", n) {
    get.withUnsafeBufferPointer { if case .single = RPC.decode(line: $0, maxDepth: 64, maxBatch: 1000) { sink += 1 } }
}
bench("decode wm.set line", n) {
    set.withUnsafeBufferPointer { if case .single = RPC.decode(line: $0, maxDepth: 64, maxBatch: 1000) { sink += 1 } }
}
bench("admin.health request", n) { sink += conn.handle(health).count }
bench("wm.get request", n) { sink += conn.handle(get).count }
bench("wm.set request", n) { sink += conn.handle(set).count }

// The same requests for a principal with grants (the access check runs on every call):
// three patterns, the one that matches last.
let restricted = try Engine(
    limits: Limits(), durability: .volatile, dataDir: "/nonexistent",
    principals: [Principal(name: "agent", tokenSHA256: nil, uids: nil, grants: [
        Grant(pattern: "wf/*", perms: .read)!, Grant(pattern: "agents/{agent}", perms: [.read, .write])!,
        Grant(pattern: "bench", perms: [.read, .write])!,
    ])], logger: Logger(label: "micro"))
let granted = InProcessConnection(engine: restricted)
_ = granted.handle(line(#"{"jsonrpc":"2.0","id":0,"method":"session.hello","params":{"agent":"micro"}}"#))
_ = granted.handle(set)
bench("wm.get request, 3 grants", n) { sink += granted.handle(get).count }
bench("wm.set request, 3 grants", n) { sink += granted.handle(set).count }
print("(checksum \(sink))")
