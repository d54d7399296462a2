import MnemoProtocol
import Testing

extension RPCLine {
    var single: RPCItem? {
        if case .single(let item) = self { return item }
        return nil
    }

    var batch: [RPCItem]? {
        if case .batch(let items) = self { return items }
        return nil
    }

    var failure: WireError? {
        if case .failure(let e) = self { return e }
        return nil
    }
}

extension RPCItem {
    var request: RPCRequest? {
        if case .request(let r) = self { return r }
        return nil
    }

    var invalid: (id: JSON, error: WireError)? {
        if case .invalid(let id, let error) = self { return (id, error) }
        return nil
    }
}

@Suite("RPC.decode")
struct RPCDecodeTests {
    @Test("a single request with id, method and params")
    func singleRequest() throws {
        let line = decode(#"{"jsonrpc":"2.0","id":7,"method":"wm.get","params":{"ns":"a","key":"k"}}"#)
        let request = try #require(line.single?.request)
        #expect(request.id == .number("7"))
        #expect(request.method == "wm.get")
        #expect(request.params.members.map(\.key) == ["ns", "key"])
        #expect(request.params["key"] == .string("k"))
    }

    @Test("member order does not matter and a string id is kept as a string")
    func memberOrder() throws {
        let line = decode(#"{"params":{},"method":"admin.health","id":"req-1","jsonrpc":"2.0"}"#)
        let request = try #require(line.single?.request)
        #expect(request.id == .string("req-1"))
        #expect(request.method == "admin.health")
    }

    @Test("params may be omitted or null; both mean no parameters")
    func paramsAbsentOrNull() throws {
        let absent = try #require(decode(#"{"jsonrpc":"2.0","id":1,"method":"m"}"#).single?.request)
        #expect(absent.params.members.isEmpty)
        let null = try #require(decode(#"{"jsonrpc":"2.0","id":1,"method":"m","params":null}"#).single?.request)
        #expect(null.params.members.isEmpty)
    }

    @Test("a notification (no id) is a request with id nil; id null is a request with id null")
    func notification() throws {
        let note = try #require(decode(#"{"jsonrpc":"2.0","method":"event","params":{}}"#).single?.request)
        #expect(note.id == nil)
        let nullID = try #require(decode(#"{"jsonrpc":"2.0","id":null,"method":"m"}"#).single?.request)
        #expect(nullID.id == .null)
    }

    @Test("a batch decodes every element in order, invalid ones included")
    func batch() throws {
        let line = decode(
            #"[{"jsonrpc":"2.0","id":1,"method":"a"},{"jsonrpc":"2.0","method":"b"},5,{"jsonrpc":"1.0","id":3,"method":"c"}]"#)
        let items = try #require(line.batch)
        try #require(items.count == 4)
        #expect(items[0].request?.method == "a")
        #expect(items[0].request?.id == .number("1"))
        #expect(items[1].request?.method == "b")
        #expect(items[1].request != nil && items[1].request?.id == nil)
        #expect(items[2].invalid?.error.code == -32600)
        #expect(items[2].invalid?.id == .null)
        #expect(items[3].invalid?.error.code == -32600)
        #expect(items[3].invalid?.id == .number("3"))
    }

    @Test("an empty batch is -32600 for the whole line")
    func emptyBatch() throws {
        let error = try #require(decode("[]").failure)
        #expect(error.code == -32600)
    }

    @Test("a batch of exactly maxBatch is fine, one more is LIMIT_EXCEEDED max_batch")
    func batchLimit() throws {
        let one = #"{"jsonrpc":"2.0","id":1,"method":"m"}"#
        let atLimit = "[" + Array(repeating: one, count: 5).joined(separator: ",") + "]"
        #expect(decode(atLimit, maxBatch: 5).batch?.count == 5)
        let over = "[" + Array(repeating: one, count: 6).joined(separator: ",") + "]"
        let error = try #require(decode(over, maxBatch: 5).failure)
        #expect(error.code == -32000)
        #expect(error.appCode == .limitExceeded)
        #expect(error.detail("limit") == .string("max_batch"))
        #expect(error.detail("max")?.int64Value == 5)
    }

    @Test("a line that is not JSON is -32700", arguments: ["", "{", "hello", #"{"jsonrpc":"2.0",}"#, "[1,]", #"{"a":1,"a":2}"#])
    func notJSON(_ text: String) throws {
        let error = try #require(decode(text).failure)
        #expect(error.code == -32700)
    }

    @Test("a line nested too deep is LIMIT_EXCEEDED max_depth")
    func tooDeep() throws {
        let deep = #"{"jsonrpc":"2.0","id":1,"method":"m","params":{"v":"# + String(repeating: "[", count: 10)
            + String(repeating: "]", count: 10) + "}}"
        let error = try #require(decode(deep, maxDepth: 8).failure)
        #expect(error.appCode == .limitExceeded)
        #expect(error.detail("limit") == .string("max_depth"))
        #expect(error.detail("max")?.int64Value == 8)
        // the same line is fine with a larger limit
        #expect(decode(deep, maxDepth: 12).single?.request != nil)
    }

    @Test(
        "an unusable request is -32600 and echoes a usable id",
        arguments: [
            (#"{"id":1,"method":"m"}"#, JSON.number("1")),  // jsonrpc missing
            (#"{"jsonrpc":"1.0","id":1,"method":"m"}"#, .number("1")),  // wrong version
            (#"{"jsonrpc":2.0,"id":"x","method":"m"}"#, .string("x")),  // version not a string
            (#"{"jsonrpc":"2.0","id":"x"}"#, .string("x")),  // method missing
            (#"{"jsonrpc":"2.0","id":4,"method":5}"#, .number("4")),  // method not a string
            (#"{"jsonrpc":"2.0","id":4,"method":null}"#, .number("4")),
            (#"{"jsonrpc":"2.0","id":4,"method":"m","extra":1}"#, .number("4")),  // unknown member
            (#"{"jsonrpc":"2.0","method":"m","agent":"x","id":9}"#, .number("9")),  // unknown member before the id
            (#"{"jsonrpc":"2.0","method":"m","extra":1}"#, .null),  // unknown member, no id
            ("42", .null),  // not an object
            (#""req""#, .null),
            ("null", .null),
        ])
    func invalidRequest(_ text: String, _ id: JSON) throws {
        let invalid = try #require(decode(text).single?.invalid, "decoded as a request: \(text)")
        #expect(invalid.error.code == -32600)
        #expect(invalid.id == id)
    }

    @Test("a non-string method echoes the id even when the id comes after the method")
    func methodBeforeID() throws {
        let invalid = try #require(decode(#"{"jsonrpc":"2.0","method":5,"id":4}"#).single?.invalid)
        #expect(invalid.error.code == -32600)
        do {
            #expect(invalid.id == .number("4"))
        }
    }

    @Test(
        "an id that is not a number, string or null is invalid and answered with id null",
        arguments: [#"{"a":1}"#, "[1]", "true", "{}"])
    func badID(_ id: String) throws {
        let invalid = try #require(decode(#"{"jsonrpc":"2.0","id":\#(id),"method":"m"}"#).single?.invalid)
        #expect(invalid.error.code == -32600)
        #expect(invalid.id == .null)
    }

    @Test("params that are not an object are -32602 with the id echoed", arguments: ["[1,2]", "1", #""x""#, "true"])
    func paramsNotObject(_ params: String) throws {
        let invalid = try #require(decode(#"{"jsonrpc":"2.0","id":3,"method":"m","params":\#(params)}"#).single?.invalid)
        #expect(invalid.error.code == -32602)
        #expect(invalid.id == .number("3"))
    }

    @Test("a notification with positional params is never answered; one with scalar params is no request (-32600)")
    func notificationParams() throws {
        // The JSON-RPC 2.0 specification's own example of a notification.
        let spec = decode(#"{"jsonrpc":"2.0","method":"update","params":[1,2,3,4,5]}"#)
        guard case .ignored? = spec.single else { Issue.record("answered: \(spec)"); return }
        let batch = try #require(decode(#"[{"jsonrpc":"2.0","method":"notify_sum","params":[1,2,4]},{"jsonrpc":"2.0","method":"notify_hello","params":[7]}]"#).batch)
        #expect(batch.allSatisfy { if case .ignored = $0 { true } else { false } })
        let scalar = try #require(decode(#"{"jsonrpc":"2.0","method":"update","params":"bar"}"#).single?.invalid)
        #expect(scalar.error.code == -32600 && scalar.id == .null)
    }
}

@Suite("RPC response writing")
struct RPCWriteTests {
    static func line(_ w: JSONWriter) throws -> JSON { try JSONParser.parse(w.bytes) }

    @Test("beginResult + value + endResult is a valid JSON-RPC response")
    func result() throws {
        for id in [JSON.number("1"), .string("a\"b"), .null] {
            var w = JSONWriter()
            RPC.beginResult(id: id, &w)
            w.value(["found": true, "value": [1, 2]])
            RPC.endResult(&w)
            let r = try Self.line(w)
            #expect(r.objectValue?.map(\.key) == ["jsonrpc", "id", "result"])
            #expect(r["jsonrpc"] == "2.0")
            #expect(r["id"] == id)
            #expect(r["result"] == ["found": true, "value": [1, 2]])
        }
    }

    @Test("writeError is a valid JSON-RPC error response")
    func error() throws {
        var w = JSONWriter()
        RPC.writeError(id: .number("12"), .invalidParams("key", "must be a \"string\""), &w)
        let r = try Self.line(w)
        #expect(r.objectValue?.map(\.key) == ["jsonrpc", "id", "error"])
        #expect(r["jsonrpc"] == "2.0")
        #expect(r["id"] == .number("12"))
        #expect(r["result"] == nil)
        let e = try #require(r["error"])
        #expect(e["code"]?.int64Value == -32602)
        #expect(e["message"]?.stringValue?.contains("key") == true)
        #expect(e["data"]?["field"] == "key")
    }

    @Test("an error without data has no data member")
    func errorWithoutData() throws {
        var w = JSONWriter()
        RPC.writeError(id: .null, .parse("parse error"), &w)
        let r = try Self.line(w)
        #expect(r["id"] == .null)
        #expect(r["error"]?["code"]?.int64Value == -32700)
        #expect(r["error"]?.objectValue?.map(\.key) == ["code", "message"])
    }

    @Test("writeNotification is a notification: no id")
    func notification() throws {
        var w = JSONWriter()
        RPC.writeNotification(method: "event", params: ["watch_id": "w1", "rev": 5], &w)
        let r = try Self.line(w)
        #expect(r.objectValue?.map(\.key) == ["jsonrpc", "method", "params"])
        #expect(r["method"] == "event")
        #expect(r["params"]?["rev"]?.int64Value == 5)
    }

    @Test("a response written for a decoded request carries the same id")
    func echoID() throws {
        let request = try #require(decode(#"{"jsonrpc":"2.0","id":12345678901234567890,"method":"m"}"#).single?.request)
        var w = JSONWriter()
        RPC.beginResult(id: try #require(request.id), &w)
        w.raw("null")
        RPC.endResult(&w)
        #expect(String(decoding: w.bytes, as: UTF8.self) == #"{"jsonrpc":"2.0","id":12345678901234567890,"result":null}"#)
    }
}
