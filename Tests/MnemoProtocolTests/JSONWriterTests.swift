import MnemoProtocol
import Testing

@Suite("JSONWriter")
struct JSONWriterTests {
    static func written(_ body: (inout JSONWriter) -> Void) -> String {
        var w = JSONWriter()
        body(&w)
        return String(decoding: w.bytes, as: UTF8.self)
    }

    @Test(
        "strings are escaped as JSON requires",
        arguments: [
            ("plain", #""plain""#),
            ("", #""""#),
            ("a\"b", #""a\"b""#),
            ("a\\b", #""a\\b""#),
            ("line\nbreak", #""line\nbreak""#),
            ("cr\rtab\t", #""cr\rtab\t""#),
            ("\u{01}", #""\u0001""#),
            ("\u{00}", #""\u0000""#),
            ("\u{1F}", #""\u001f""#),
            ("\u{08}\u{0C}", #""\u0008\u000c""#),
            ("slash/", #""slash/""#),
            ("\"\\\"", #""\"\\\"""#),
        ])
    func escaping(_ input: String, _ expected: String) throws {
        let out = Self.written { $0.string(input) }
        #expect(out == expected)
        #expect(try JSONParser.parse(out) == .string(input))
    }

    @Test("non-ASCII text passes through unescaped")
    func nonASCII() {
        let input = "café 日本 😀 \u{7F} \u{2028}"
        #expect(Self.written { $0.string(input) } == "\"\(input)\"")
    }

    @Test("integers at the extremes")
    func integers() {
        #expect(Self.written { $0.int(Int64.min) } == "-9223372036854775808")
        #expect(Self.written { $0.int(Int64.max) } == "9223372036854775807")
        #expect(Self.written { $0.int(Int64(0)) } == "0")
        #expect(Self.written { $0.int(Int64(-1)) } == "-1")
        #expect(Self.written { $0.int(-7) } == "-7")
        #expect(Self.written { $0.uint(UInt64.max) } == "18446744073709551615")
        #expect(Self.written { $0.uint(0) } == "0")
        #expect(Self.written { $0.uint(9) } == "9")
        #expect(Self.written { $0.uint(10) } == "10")
    }

    @Test("integers match their decimal description over a seeded sample")
    func integerSample() {
        var rng = SplitMix64(seed: 42)
        for _ in 0..<2000 {
            let u = rng.next() >> (rng.next() % 64)
            #expect(Self.written { $0.uint(u) } == String(u))
            let i = Int64(bitPattern: rng.next()) >> Int64(rng.next() % 64)
            #expect(Self.written { $0.int(i) } == String(i))
        }
    }

    @Test("doubles: integral values print as integers, non-finite as null, others re-parse exactly")
    func doubles() throws {
        #expect(Self.written { $0.double(3) } == "3")
        #expect(Self.written { $0.double(-2) } == "-2")
        #expect(Self.written { $0.double(.nan) } == "null")
        #expect(Self.written { $0.double(.infinity) } == "null")
        #expect(Self.written { $0.double(-.infinity) } == "null")
        for d in [0.5, -1.25, 1e-7, 1e300, 123456.789, Double.leastNonzeroMagnitude, Double.greatestFiniteMagnitude] {
            let text = Self.written { $0.double(d) }
            let back = try JSONParser.parse(text)
            #expect(back.doubleValue == d, "\(d) written as \(text)")
        }
    }

    @Test("keys, bools and a full object")
    func objectPieces() throws {
        let out = Self.written { w in
            w.byte(UInt8(ascii: "{"))
            w.key("static")
            w.bool(true)
            w.byte(UInt8(ascii: ","))
            w.key("dyn\"amic")
            w.bool(false)
            w.byte(UInt8(ascii: ","))
            w.key("raw")
            w.raw(Array("[1,2]".utf8))
            w.byte(UInt8(ascii: "}"))
        }
        #expect(out == #"{"static":true,"dyn\"amic":false,"raw":[1,2]}"#)
        #expect(try JSONParser.parse(out)["dyn\"amic"] == .bool(false))
    }

    @Test("JSON.text writes values compactly")
    func compactValue() {
        let value: JSON = ["a": [1, "x", .null, true], "b": [:], "c": []]
        #expect(value.text == #"{"a":[1,"x",null,true],"b":{},"c":[]}"#)
        #expect(value.bytes == Array(value.text.utf8))
    }

    // MARK: property-style round trip

    struct Gen {
        var rng: SplitMix64

        mutating func int(_ n: Int) -> Int { Int(rng.next() % UInt64(n)) }

        mutating func scalar() -> Unicode.Scalar {
            switch int(6) {
            case 0: return Unicode.Scalar(UInt8(int(0x20)))  // control characters
            case 1: return ["\"", "\\", "/", "\u{7F}"][int(4)]
            case 2: return Unicode.Scalar(UInt32(0xA0 + int(0x700)))!  // Latin/Greek/Cyrillic
            case 3: return Unicode.Scalar(UInt32(0x1F600 + int(0x40)))!  // astral plane
            case 4: return Unicode.Scalar(UInt32(0xE000 + int(0x1000)))!  // just above the surrogates
            default: return Unicode.Scalar(UInt8(0x20 + int(0x5F)))  // printable ASCII
            }
        }

        mutating func string() -> String {
            var s = String.UnicodeScalarView()
            for _ in 0..<int(12) { s.append(scalar()) }
            return String(s)
        }

        mutating func number() -> String {
            switch int(5) {
            case 0: return String(Int64(bitPattern: rng.next()))
            case 1: return String(rng.next())
            case 2: return "\(int(1000)).\(int(1000))e-\(int(20))"
            case 3: return "-0.\(int(100_000))"
            default: return String(int(100))
            }
        }

        mutating func value(depth: Int) -> JSON {
            let kind = depth >= 5 ? int(4) : int(6)
            switch kind {
            case 0: return .null
            case 1: return .bool(int(2) == 0)
            case 2: return .number(number())
            case 3: return .string(string())
            case 4: return .array((0..<int(5)).map { _ in value(depth: depth + 1) })
            default:
                var keys = Set<String>()
                var members: [JSONMember] = []
                for _ in 0..<int(6) {
                    let key = string()
                    // distinct by bytes and by Swift equality
                    guard keys.insert(key).inserted else { continue }
                    members.append(JSONMember(key, value(depth: depth + 1)))
                }
                return .object(members)
            }
        }
    }

    @Test("writer output re-parses to the same value (seeded generator)")
    func propertyRoundTrip() throws {
        var gen = Gen(rng: SplitMix64(seed: 0x6D6E_656D_6F))
        for _ in 0..<2000 {
            let value = gen.value(depth: 0)
            let bytes = value.bytes
            let back = try JSONParser.parse(bytes)
            #expect(back == value, "\(value.text)")
            #expect(back.bytes == bytes)
        }
    }
}
