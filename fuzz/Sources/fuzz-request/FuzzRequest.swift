import MnemoProtocol

/// Parses the input as a request line and checks: the parser never traps; whatever it
/// accepts writes back to JSON that parses to an equal value (writer and parser agree);
/// RPC.decode classifies every line (requests, invalid items, or a failure of the whole
/// line) and every error reply it leads to is valid JSON-RPC.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRequest(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let line = UnsafeBufferPointer(start: data, count: size)
    if let value = try? JSONParser.parse(line, maxDepth: 64) {
        guard let again = try? JSONParser.parse(value.bytes, maxDepth: 64) else {
            preconditionFailure("written JSON does not parse: \(value.text)")
        }
        precondition(again.semanticallyEquals(value), "round trip changed the value: \(value.text)")
    }
    switch RPC.decode(line: line, maxDepth: 64, maxBatch: 1000) {
    case .failure(let e):
        checkErrorReply(id: .null, e)
    case .single(.invalid(let id, let e)):
        checkErrorReply(id: id, e)
    case .single(.request(let r)):
        precondition(r.id.map(isValidID) ?? true, "request id of a kind JSON-RPC does not allow")
    case .single(.ignored):
        break
    case .batch(let items):
        precondition(!items.isEmpty && items.count <= 1000, "batch of \(items.count) items accepted")
        for item in items {
            switch item {
            case .invalid(let id, let e): checkErrorReply(id: id, e)
            case .request(let r): precondition(r.id.map(isValidID) ?? true, "request id of a kind JSON-RPC does not allow")
            case .ignored: break
            }
        }
    }
    return 0
}

private func isValidID(_ id: JSON) -> Bool {
    switch id {
    case .string, .number, .null: return true
    default: return false
    }
}

/// The error reply for `e` parses, and carries the id, a code and a message.
private func checkErrorReply(id: JSON, _ e: WireError) {
    var out = JSONWriter()
    RPC.writeError(id: id, e, &out)
    guard let reply = try? JSONParser.parse(out.bytes) else { preconditionFailure("error reply is not JSON: \(out.bytes)") }
    precondition(reply["jsonrpc"] == "2.0" && reply["error"]?["code"]?.int64Value != nil
                 && reply["error"]?["message"]?.stringValue != nil, "malformed error reply \(reply.text)")
    precondition(reply["id"].map { $0.semanticallyEquals(id) } ?? false, "error reply lost the id")
}
