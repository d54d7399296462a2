#if canImport(Glibc)
import Glibc
#endif
import Logging
import MnemoCore
import MnemoProtocol
import MnemoServer

/// One in-memory engine and connection for the whole run, as a long-lived daemon would
/// have: the input is split into lines, each handled exactly as a socket line is.
/// The fuzzing agent may read and write everything but holds no admin grant: admin.export,
/// admin.import and admin.snapshot take file paths, and a fuzzer must not write files.
// libFuzzer calls the entry point from one thread only.
nonisolated(unsafe) private let connection: InProcessConnection = {
    var limits = Limits()
    limits.maxWorkingBytes = 64 << 20  // refusals, not growth, once the fuzzer fills it
    let fuzzer = Principal(name: "fuzz", tokenSHA256: nil, uids: [getuid()],
                           grants: [Grant(pattern: "**", perms: [.read, .write])!])
    let engine = try! Engine(limits: limits, durability: .volatile, dataDir: "/nonexistent", principals: [fuzzer],
                             auditMutations: false, logger: Logger(label: "fuzz") { _ in SwiftLogNoOpLogHandler() })
    let c = InProcessConnection(engine: engine)
    _ = c.handle(Array(#"{"jsonrpc":"2.0","id":0,"method":"session.hello","params":{"agent":"fuzz"}}"#.utf8))
    return c
}()

/// Every line gets well-formed JSON-RPC back (nothing for notifications only; a streamed
/// reply is event lines, then the response): exactly one of result and error, an integer
/// code and a message on errors, never INTERNAL. A trap anywhere in decoding, dispatch or
/// a handler is a crash libFuzzer keeps.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDispatch(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let input = UnsafeBufferPointer(start: data, count: size)
    for line in input.split(separator: 0x0A, omittingEmptySubsequences: true) {
        let reply = connection.handle(UnsafeBufferPointer(rebasing: line))
        for replyLine in reply.split(separator: 0x0A) {
            guard let json = try? JSONParser.parse(replyLine) else {
                preconditionFailure("reply is not JSON: \(String(decoding: replyLine, as: UTF8.self))")
            }
            for one in json.arrayValue ?? [json] where one["method"] == nil {
                precondition(one["jsonrpc"] == "2.0", "reply without jsonrpc 2.0: \(one.text)")
                precondition((one["result"] == nil) != (one["error"] == nil),
                             "not exactly one of result and error: \(one.text)")
                if let error = one["error"] {
                    precondition(error["code"]?.int64Value != nil && error["message"]?.stringValue != nil,
                                 "malformed error: \(one.text)")
                    // INTERNAL means a handler met a case nobody named: a bug, as the wire
                    // fuzzer also holds.
                    precondition(error["code"]?.int64Value != Int64(WireError.internal("").code),
                                 "INTERNAL error: \(one.text)")
                }
            }
        }
    }
    return 0
}
