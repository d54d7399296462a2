import MnemoProtocol
import Testing

@Suite("Params")
struct ParamsTests {
    static func params(_ text: String) throws -> Params {
        Params(try #require(try JSONParser.parse(text).objectValue))
    }

    /// Runs `body`, expecting a -32602 that names `field`.
    static func expectInvalid(
        _ field: String, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws(WireError) -> Void
    ) {
        do {
            try body()
            Issue.record("expected -32602 for \(field)", sourceLocation: sourceLocation)
        } catch {
            #expect(error.code == -32602, sourceLocation: sourceLocation)
            #expect(error.detail("field") == .string(field), sourceLocation: sourceLocation)
            #expect(error.detail("reason")?.stringValue?.isEmpty == false, sourceLocation: sourceLocation)
        }
    }

    /// "nil", "value" or the error's message: what an optional getter gave.
    static func outcome<T>(_ body: () throws(WireError) -> T?) -> String {
        do {
            return try body() == nil ? "nil" : "value"
        } catch {
            return error.message
        }
    }

    @Test("allowOnly accepts the listed names")
    func allowOnlyAccepts() throws {
        let p = try Self.params(#"{"ns":"a","key":"k"}"#)
        try p.allowOnly(["ns", "key", "value"])
        try Params([]).allowOnly([])
    }

    @Test("allowOnly rejects an unknown name, naming it", arguments: ["agent", "provenance", "Key", "ke", "keys", ""])
    func allowOnlyRejects(_ name: String) throws {
        let p = try Self.params(#"{"ns":"a","\#(name)":1}"#)
        Self.expectInvalid(name) { () throws(WireError) in try p.allowOnly(["ns", "key", "value"]) }
    }

    @Test("string: present, missing, null, wrong type")
    func string() throws {
        let p = try Self.params(#"{"s":"x","n":1,"z":null,"o":{},"a":[]}"#)
        #expect(try p.string("s") == "x")
        Self.expectInvalid("missing") { () throws(WireError) in _ = try p.string("missing") }
        Self.expectInvalid("z") { () throws(WireError) in _ = try p.string("z") }
        Self.expectInvalid("n") { () throws(WireError) in _ = try p.string("n") }
        Self.expectInvalid("o") { () throws(WireError) in _ = try p.string("o") }
        Self.expectInvalid("a") { () throws(WireError) in _ = try p.string("a") }
    }

    @Test("optionalString: absent is nil, wrong type is an error")
    func optionalString() throws {
        let p = try Self.params(#"{"s":"x","n":1}"#)
        #expect(try p.optionalString("s") == "x")
        #expect(try p.optionalString("missing") == nil)
        Self.expectInvalid("n") { () throws(WireError) in _ = try p.optionalString("n") }
    }

    @Test("int: integral spellings in range are accepted")
    func intAccepts() throws {
        let p = try Self.params(#"{"a":5,"b":5.0,"c":5e0,"lo":1,"hi":10}"#)
        for key in ["a", "b", "c"] { #expect(try p.int(key, in: 1...10) == 5) }
        #expect(try p.int("lo", in: 1...10) == 1)
        #expect(try p.int("hi", in: 1...10) == 10)
    }

    @Test(
        "int: wrong type, fraction, out of range or missing names the field",
        arguments: [#""5""#, "5.5", "true", "[5]", "{}", "0", "11", "-1", "1e30", "null"])
    func intRejects(_ value: String) throws {
        let p = try Self.params(#"{"ttl_ms":\#(value)}"#)
        Self.expectInvalid("ttl_ms") { () throws(WireError) in _ = try p.int("ttl_ms", in: 1...10) }
        Self.expectInvalid("other") { () throws(WireError) in _ = try p.int("other", in: 1...10) }
    }

    @Test("optionalInt: absent is nil; present values are checked")
    func optionalInt() throws {
        let p = try Self.params(#"{"ok":3,"bad":99}"#)
        #expect(try p.optionalInt("missing", in: 0...5) == nil)
        #expect(try p.optionalInt("ok", in: 0...5) == 3)
        Self.expectInvalid("bad") { () throws(WireError) in _ = try p.optionalInt("bad", in: 0...5) }
    }

    @Test("optionalBool, optionalArray, optionalObject")
    func otherTypes() throws {
        let p = try Self.params(#"{"b":false,"a":[1],"o":{"x":1},"n":0}"#)
        #expect(try p.optionalBool("b") == false)
        #expect(try p.optionalBool("missing") == nil)
        Self.expectInvalid("n") { () throws(WireError) in _ = try p.optionalBool("n") }
        #expect(try p.optionalArray("a") == [1])
        Self.expectInvalid("o") { () throws(WireError) in _ = try p.optionalArray("o") }
        #expect(try p.optionalObject("o")?["x"] == .number("1"))
        #expect(try p.optionalObject("missing") == nil)
        Self.expectInvalid("a") { () throws(WireError) in _ = try p.optionalObject("a") }
    }

    @Test("any: null is a value, absence is an error; has sees null members")
    func anyAndHas() throws {
        let p = try Self.params(#"{"value":null,"v2":[1]}"#)
        #expect(try p.any("value") == .null)
        #expect(try p.any("v2") == [1])
        Self.expectInvalid("missing") { () throws(WireError) in _ = try p.any("missing") }
        #expect(p.has("value"))
        #expect(!p.has("missing"))
    }

    @Test("a member given as null counts as absent for the optional getters and as missing for the required ones")
    func nullIsAbsent() throws {
        let p = try Self.params(#"{"z":null}"#)
        do {
            #expect(p["z"] == nil)
            #expect(Self.outcome { () throws(WireError) in try p.optionalString("z") } == "nil")
            #expect(Self.outcome { () throws(WireError) in try p.optionalInt("z", in: 0...5) } == "nil")
            #expect(Self.outcome { () throws(WireError) in try p.optionalBool("z") } == "nil")
            #expect(Self.outcome { () throws(WireError) in try p.optionalArray("z") } == "nil")
            #expect(Self.outcome { () throws(WireError) in try p.optionalObject("z") } == "nil")
        }
        // the required getters refuse it either way, naming the field
        Self.expectInvalid("z") { () throws(WireError) in _ = try p.string("z") }
        Self.expectInvalid("z") { () throws(WireError) in _ = try p.int("z", in: 0...5) }
    }
}
