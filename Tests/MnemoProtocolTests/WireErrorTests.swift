import MnemoProtocol
import Testing

@Suite("WireError")
struct WireErrorTests {
    static func written(_ e: WireError) throws -> JSON {
        var w = JSONWriter()
        e.write(to: &w)
        return try JSONParser.parse(w.bytes)
    }

    @Test("an application error has code -32000 and data.code first")
    func appError() throws {
        let e = WireError.app(.conflict, "version check failed", [JSONMember("version", .int(7))])
        #expect(e.code == -32000)
        #expect(e.data.first?.key == "code")
        #expect(e.data.first?.value == "CONFLICT")
        #expect(e.appCode == .conflict)
        #expect(e.detail("version") == .number("7"))
        let json = try Self.written(e)
        #expect(json["code"]?.int64Value == -32000)
        #expect(json["data"]?.objectValue?.first?.key == "code")
        #expect(json["data"]?["code"] == "CONFLICT")
    }

    @Test("every application name round-trips through appCode", arguments: ErrorCode.allCases)
    func appCodes(_ code: ErrorCode) throws {
        let e = WireError.app(code, "m")
        #expect(e.appCode == code)
        #expect(WireError(json: try Self.written(e))?.appCode == code)
        #expect(e.description.hasPrefix(code.rawValue))
    }

    @Test("limit errors name the limit and its maximum")
    func limit() {
        let e = WireError.limit("max_batch", max: 1000, "too many")
        #expect(e.appCode == .limitExceeded)
        #expect(e.data.map(\.key) == ["code", "limit", "max"])
        #expect(e.detail("limit") == "max_batch")
        #expect(e.detail("max")?.int64Value == 1000)
    }

    @Test("standard errors have their JSON-RPC codes and no appCode")
    func standardCodes() {
        #expect(WireError.parse("x").code == -32700)
        #expect(WireError.invalidRequest("x").code == -32600)
        #expect(WireError.methodNotFound("wm.nope").code == -32601)
        #expect(WireError.methodNotFound("wm.nope").detail("method") == "wm.nope")
        #expect(WireError.invalidParams("key", "required").code == -32602)
        #expect(WireError.invalidParams("key", "required").detail("field") == "key")
        #expect(WireError.invalidParams(nil, "bad").detail("field") == nil)
        #expect(WireError.internal("x").code == -32603)
        for e in [WireError.parse("x"), .invalidRequest("x"), .invalidParams("k", "r"), .internal("x")] {
            #expect(e.appCode == nil)
        }
    }

    @Test("appCode is nil for -32000 without a known data.code")
    func appCodeNeedsKnownName() {
        #expect(WireError(code: -32000, message: "m").appCode == nil)
        #expect(WireError(code: -32000, message: "m", data: [JSONMember("code", "NO_SUCH_NAME")]).appCode == nil)
        #expect(WireError(code: -32000, message: "m", data: [JSONMember("code", 5)]).appCode == nil)
        // a -32602 whose data happens to carry a code is not an application error
        #expect(WireError(code: -32602, message: "m", data: [JSONMember("code", "CONFLICT")]).appCode == nil)
    }

    @Test(
        "WireError(json:) round-trips what write(to:) produced",
        arguments: [
            WireError.app(.conflict, "version check failed", [JSONMember("ns", "a"), JSONMember("version", .null)]),
            .limit("max_value_bytes", max: 524_288, "value too large"),
            .invalidParams("ttl_ms", "must be between 1 and 10"),
            .parse("parse error: \"quoted\"\n"),
            .methodNotFound("x.y"),
            WireError(code: -32603, message: "", data: []),
        ])
    func roundTrip(_ e: WireError) throws {
        let back = try #require(WireError(json: try Self.written(e)))
        #expect(back == e)
    }

    @Test("WireError(json:) refuses objects without an integer code or a string message")
    func fromJSONRejects() throws {
        #expect(WireError(json: ["message": "m"]) == nil)
        #expect(WireError(json: ["code": -32000]) == nil)
        #expect(WireError(json: ["code": "x", "message": "m"]) == nil)
        #expect(WireError(json: ["code": -32000, "message": 5]) == nil)
        #expect(WireError(json: .array([])) == nil)
        #expect(WireError(json: try JSONParser.parse(#"{"code":1.5,"message":"m"}"#)) == nil)
    }
}
