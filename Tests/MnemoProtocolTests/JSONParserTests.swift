import MnemoProtocol
import Testing

@Suite("JSONParser: accepted documents")
struct JSONParserAcceptTests {
    @Test(
        "a compact document re-serializes to the same text",
        arguments: [
            #"{"a":1,"b":[true,false,null],"c":{"d":"e"}}"#,
            #"[]"#,
            #"{}"#,
            #"[[],{},[{}]]"#,
            #"{"z":1,"a":2,"m":3}"#,
            #"[1,-2,3.5,-0.5e-3,12345678901234567890,1E+10,0,-0,0.0,2e-7]"#,
            #""plain""#,
            #""""#,
            "0",
            "-0",
            "true",
            "false",
            "null",
            #"{"k":"café 😀"}"#,
        ])
    func roundTrip(_ text: String) throws {
        let value = try parsed(text)
        #expect(value.text == text)
    }

    @Test("whitespace around tokens is accepted and dropped")
    func whitespace() throws {
        let value = try parsed(" \t\r\n{ \"a\" :\n[ 1 ,\t2 ] , \"b\" : { } }\r\n ")
        #expect(value.text == #"{"a":[1,2],"b":{}}"#)
    }

    @Test(
        "numbers keep their exact source text",
        arguments: ["12345678901234567890", "-0.5e-3", "1E+10", "1.000", "-0", "0.1e1", "123456789012345678901234567890.5"])
    func numberText(_ text: String) throws {
        #expect(try parsed(text) == .number(text))
        #expect(try parsed("[\(text)]") == .array([.number(text)]))
    }

    @Test("members keep their source order")
    func memberOrder() throws {
        let value = try parsed(#"{"b":1,"a":2,"c":3}"#)
        #expect(value.objectValue?.map(\.key) == ["b", "a", "c"])
    }

    @Test("simple escapes decode")
    func simpleEscapes() throws {
        let value = try parsed(#""q\"b\\s\/b\bf\fn\nr\rt\t""#)
        #expect(value == .string("q\"b\\s/b\u{08}f\u{0C}n\nr\rt\t"))
    }

    @Test("\\u escapes decode, in either hex case")
    func unicodeEscapes() throws {
        #expect(try parsed(#""\u00e9""#) == .string("é"))
        #expect(try parsed(#""\u00E9""#) == .string("é"))
        #expect(try parsed(#""caf\u00e9!""#) == .string("café!"))
        #expect(try parsed(#""\u0000""#) == .string("\u{0}"))
        #expect(try parsed(#""\uFFFF""#) == .string("\u{FFFF}"))
    }

    @Test("a surrogate pair decodes to one scalar")
    func surrogatePair() throws {
        #expect(try parsed(#""\ud83d\ude00""#) == .string("😀"))
        #expect(try parsed(#""x\uD83D\uDE00y""#) == .string("x😀y"))
        #expect(try parsed(#""\udbff\udfff""#) == .string("\u{10FFFF}"))
    }

    @Test("raw UTF-8 passes through, also next to escapes")
    func rawUTF8() throws {
        #expect(try parsed("\"日本語\"") == .string("日本語"))
        #expect(try parsed("\"日本\\n語😀\"") == .string("日本\n語😀"))
    }

    @Test("the same key in different objects is not a duplicate")
    func sameKeyInSiblingsAndChildren() throws {
        #expect(try parsed(#"{"a":{"a":1}}"#).text == #"{"a":{"a":1}}"#)
        #expect(try parsed(#"[{"a":1},{"a":2}]"#).text == #"[{"a":1},{"a":2}]"#)
    }

    @Test("an object with many distinct members is accepted")
    func manyMembers() throws {
        let text = "{" + (0..<100).map { "\"k\($0)\":\($0)" }.joined(separator: ",") + "}"
        let value = try parsed(text)
        #expect(value.objectValue?.count == 100)
        #expect(value["k99"] == .number("99"))
    }

    @Test("the byte and String entry points agree")
    func byteEntryPoint() throws {
        let text = #"{"a":[1,"x\u00e9"]}"#
        let fromBytes = try JSONParser.parse(Array(text.utf8))
        let fromSlice = try JSONParser.parse(Array(("  " + text).utf8)[2...])
        #expect(fromBytes == (try parsed(text)))
        #expect(fromSlice == fromBytes)
    }
}

@Suite("JSONParser: rejected documents")
struct JSONParserRejectTests {
    @Test(
        "grammar violations are syntax errors",
        arguments: [
            // trailing and missing commas
            "[1,]", #"{"a":1,}"#, "[,1]", "[1 2]", #"{"a":1 "b":2}"#, "[1,,2]",
            // numbers
            "01", "-01", "00", "1.", "-1.", ".5", "+1", "-", "1e", "1e+", "1E-", "0x10", "1.5.2", "--1",
            // non-finite spellings
            "NaN", "nan", "Infinity", "-Infinity", "inf",
            // single quotes and comments
            "'a'", "{'a':1}", "[1]//c", "/*c*/1", "[1/*c*/]", "#1",
            // unterminated
            #""abc"#, "[1,2", #"{"a":1"#, #"{"a""#, #"{"a":"#, "[", "{", #"["a""#, "[[]",
            // bad literals and keys
            "tru", "True", "nul", "nulll", "falsey", "{1:2}", #"{"a" 1}"#, "{a:1}",
            // escapes
            #""\x""#, #""\a""#, #""\'""#, #""\u12""#, #""\u12G4""#, #""\U00e9""#, #""abc\"#,
            // lone surrogates
            #""\ud83d""#, #""\ude00""#, #""\ud83dx""#, #""\ud83d\u0041""#, #""\ud83d\ud83d""#, #""\ud83d\n""#,
            // trailing data
            "1 2", "[] []", "{}x", "null,", #""a""b""#, "true false",
            // empty
            "", " ", "\n\t ",
        ])
    func syntax(_ text: String) {
        let error = parseError(text)
        #expect(error?.kind == .syntax, "accepted or misclassified: \(text)")
    }

    @Test(
        "raw control characters inside strings are rejected",
        arguments: [0x00, 0x01, 0x09, 0x0A, 0x0D, 0x1F] as [UInt8])
    func controlCharacters(_ c: UInt8) {
        // fast path (no escape before) and slow path (after an escape)
        #expect(parseError([0x22, 0x61, c, 0x62, 0x22])?.kind == .syntax)
        #expect(parseError([0x22, 0x5C, 0x6E, c, 0x22])?.kind == .syntax)
    }

    @Test(
        "invalid UTF-8 is rejected, inside and outside strings",
        arguments: [
            [0x22, 0xFF, 0x22],  // never valid
            [0x22, 0xFE, 0x22],
            [0x22, 0xC0, 0xAF, 0x22],  // overlong '/'
            [0x22, 0xE0, 0x80, 0xAF, 0x22],  // overlong, 3 bytes
            [0x22, 0xED, 0xA0, 0x80, 0x22],  // UTF-8 encoded surrogate
            [0x22, 0xE2, 0x82, 0x22],  // truncated sequence
            [0x22, 0x80, 0x22],  // lone continuation byte
            [0x22, 0xF4, 0x90, 0x80, 0x80, 0x22],  // above U+10FFFF
            [0x22, 0x5C, 0x6E, 0xFF, 0x22],  // after an escape (slow path)
            [0x22, 0x5C, 0x6E, 0xC0, 0xAF, 0x22],
            [0x7B, 0x22, 0xFF, 0x22, 0x3A, 0x31, 0x7D],  // in a key
            [0xFF],
            [0x5B, 0xC3, 0xA9, 0x5D],  // valid UTF-8 but not inside a string
        ] as [[UInt8]])
    func invalidUTF8(_ bytes: [UInt8]) {
        #expect(parseError(bytes)?.kind == .syntax)
    }

    @Test("duplicate keys are rejected in a small object")
    func duplicateSmall() {
        #expect(parseError(#"{"a":1,"a":2}"#)?.kind == .syntax)
        #expect(parseError(#"{"a":1,"b":2,"a":3}"#)?.kind == .syntax)
        // the same key spelled with an escape is still the same key
        #expect(parseError(#"{"a":1,"\u0061":2}"#)?.kind == .syntax)
        #expect(parseError(#"{"a":{"x":1,"x":2}}"#)?.kind == .syntax)
    }

    @Test("duplicate keys are rejected in objects of more than 8 members, wherever the first copy is")
    func duplicateLarge() {
        for total in [9, 10, 12, 40] {
            for duplicated in 0..<total {
                var members = (0..<total).map { "\"k\($0)\":\($0)" }
                members.append("\"k\(duplicated)\":true")
                let text = "{" + members.joined(separator: ",") + "}"
                #expect(parseError(text)?.kind == .syntax, "accepted duplicate k\(duplicated) among \(total)")
            }
            // and each of those objects without the duplicate is fine
            let clean = "{" + (0..<total).map { "\"k\($0)\":\($0)" }.joined(separator: ",") + "}"
            #expect(parseError(clean) == nil)
        }
    }

    @Test("a duplicate in the middle of a large object is caught")
    func duplicateMiddle() {
        var members = (0..<20).map { "\"k\($0)\":\($0)" }
        members.insert("\"k12\":0", at: 15)
        #expect(parseError("{" + members.joined(separator: ",") + "}")?.kind == .syntax)
    }

    @Test("keys are compared by code points: canonically equivalent but different names are distinct members")
    func keysByCodePoints() {
        // RFC 8259 §8.3: names compare code unit by code unit.
        do {
            #expect(parseError(#"{"\u00e9":1,"e\u0301":2}"#) == nil)
            #expect(parseError(#"{"K":1,"\u212a":2}"#) == nil)
        }
    }

    @Test("the error offset points into the input")
    func errorOffset() throws {
        let error = try #require(parseError("[1,2,x]"))
        #expect(error.offset == 5)
        #expect(error.description.contains("5"))
    }
}

@Suite("JSONParser: nesting depth")
struct JSONParserDepthTests {
    static func nestedArrays(_ depth: Int) -> String {
        String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
    }

    static func nestedObjects(_ depth: Int) -> String {
        String(repeating: #"{"a":"#, count: depth) + "1" + String(repeating: "}", count: depth)
    }

    @Test("depth exactly maxDepth is accepted, maxDepth+1 is tooDeep", arguments: [1, 2, 3, 64, 512])
    func boundary(_ maxDepth: Int) {
        #expect(parseError(Self.nestedArrays(maxDepth), maxDepth: maxDepth) == nil)
        #expect(parseError(Self.nestedObjects(maxDepth), maxDepth: maxDepth) == nil)
        #expect(parseError(Self.nestedArrays(maxDepth + 1), maxDepth: maxDepth)?.kind == .tooDeep(max: maxDepth))
        #expect(parseError(Self.nestedObjects(maxDepth + 1), maxDepth: maxDepth)?.kind == .tooDeep(max: maxDepth))
    }

    @Test("the default maxDepth is 64")
    func defaultDepth() {
        #expect(parseError(Self.nestedArrays(64)) == nil)
        #expect(parseError(Self.nestedArrays(65))?.kind == .tooDeep(max: 64))
    }

    @Test("mixed arrays and objects count together")
    func mixed() {
        // depth 4: { [ { [ ] } ] }
        let text = #"{"a":[{"b":[1]}]}"#
        #expect(parseError(text, maxDepth: 4) == nil)
        #expect(parseError(text, maxDepth: 3)?.kind == .tooDeep(max: 3))
    }

    @Test("scalars need no depth and siblings do not add up")
    func siblings() {
        #expect(parseError("1", maxDepth: 1) == nil)
        #expect(parseError("[[1],[2],[3]]", maxDepth: 2) == nil)
    }

    @Test("a 100k-deep input fails cleanly (no stack overflow)")
    func hostileDepth() {
        let open = String(repeating: "[", count: 100_000)
        #expect(parseError(open)?.kind == .tooDeep(max: 64))
        #expect(parseError(Self.nestedArrays(100_000))?.kind == .tooDeep(max: 64))
        #expect(parseError(Self.nestedObjects(100_000))?.kind == .tooDeep(max: 64))
        #expect(parseError(Self.nestedArrays(100_000), maxDepth: 512)?.kind == .tooDeep(max: 512))
    }
}

@Suite("JSON values")
struct JSONValueTests {
    @Test(
        "int64Value accepts integral numbers in any spelling",
        arguments: [
            ("1000", 1000), ("1000.0", 1000), ("1e3", 1000), ("1E3", 1000), ("10e2", 1000), ("1000e0", 1000),
            ("-0", 0), ("0.0", 0), ("-42", -42), ("-4.2e1", -42),
            ("9223372036854775807", Int64.max), ("-9223372036854775808", Int64.min),
        ] as [(String, Int64)])
    func int64Accepts(_ text: String, _ expected: Int64) throws {
        #expect(try parsed(text).int64Value == expected)
    }

    @Test(
        "int64Value rejects fractions, out-of-range numbers and non-numbers",
        arguments: ["1.5", "0.1", "1e-1", "-2.5", "9223372036854775808", "-9223372036854775809", "1e300", "1e19",
                    #""1000""#, "true", "null", "[1]", #"{"a":1}"#])
    func int64Rejects(_ text: String) throws {
        #expect(try parsed(text).int64Value == nil)
    }

    @Test("semanticallyEquals ignores member order and numeric spelling")
    func semanticEquality() throws {
        let a = try parsed(#"{"a":1,"b":[1,2.5,{"x":null}],"c":"s"}"#)
        let b = try parsed(#"{"c":"s","b":[1.0,25e-1,{"x":null}],"a":1e0}"#)
        #expect(a.semanticallyEquals(b))
        #expect(b.semanticallyEquals(a))
        #expect(try parsed("100").semanticallyEquals(try parsed("1e2")))
        #expect(try parsed("-0").semanticallyEquals(try parsed("0")))
    }

    @Test(
        "semanticallyEquals still tells different values apart",
        arguments: [
            ("[1,2]", "[2,1]"), (#"{"a":1}"#, #"{"a":1,"b":2}"#), (#"{"a":1,"b":2}"#, #"{"a":1,"c":2}"#),
            ("1", #""1""#), ("null", "false"), ("0", "false"), ("1", "1.5"), (#""a""#, #""A""#),
            ("[]", "{}"), (#"{"a":[1]}"#, #"{"a":[1,1]}"#), ("true", "false"),
        ])
    func semanticInequality(_ x: String, _ y: String) throws {
        #expect(!(try parsed(x)).semanticallyEquals(try parsed(y)))
        #expect(!(try parsed(y)).semanticallyEquals(try parsed(x)))
    }

    @Test("semanticallyEquals compares numbers exactly, also beyond Int64 and Double")
    func semanticNumbersExact() throws {
        // within Int64: exact
        #expect(!(try parsed("9007199254740993")).semanticallyEquals(try parsed("9007199254740992")))
        #expect(try parsed("12345678901234567890").semanticallyEquals(try parsed("12345678901234567890")))
        let pairs = try [
            ("12345678901234567890", "12345678901234567891"), ("1e400", "2e400"), ("0.1", "0.10000000000000000001"),
        ].map { (try parsed($0.0), try parsed($0.1)) }
        do {
            for (a, b) in pairs { #expect(!a.semanticallyEquals(b), "\(a.text) vs \(b.text)") }
        }
    }

    @Test("accessors return the payload only for the matching case")
    func accessors() {
        let object: JSON = ["s": "x", "b": true, "n": 7, "a": [1], "z": .null]
        #expect(object["s"]?.stringValue == "x")
        #expect(object["b"]?.boolValue == true)
        #expect(object["n"]?.int64Value == 7)
        #expect(object["n"]?.doubleValue == 7)
        #expect(object["a"]?.arrayValue == [1])
        #expect(object["z"]?.isNull == true)
        #expect(object["missing"] == nil)
        #expect(object["s"]?.boolValue == nil)
        #expect(object["b"]?.stringValue == nil)
        #expect(object["a"]?.objectValue == nil)
        #expect(JSON.string("x")["s"] == nil)
        #expect(JSON.int(Int64.min) == .number("-9223372036854775808"))
        #expect(JSON.int(UInt64.max) == .number("18446744073709551615"))
    }
}
