/// Why a byte sequence is not acceptable JSON.
public struct JSONParseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The kinds of failure.
    public enum Kind: Sendable, Equatable {
        /// Not JSON (RFC 8259) or not UTF-8.
        case syntax
        /// Nested deeper than the allowed depth.
        case tooDeep(max: Int)
    }
    /// What went wrong.
    public var kind: Kind
    /// Byte offset of the failure in the input.
    public var offset: Int
    /// A short explanation for a person.
    public var reason: String

    /// A one-line description with the offset.
    public var description: String { "\(reason) at byte \(offset)" }
}

/// A strict, single-pass JSON parser over UTF-8 bytes (RFC 8259: no comments, no trailing
/// commas, no NaN, no duplicate object keys, valid UTF-8 only).
///
/// Depth is checked before descending, so a hostile input cannot recurse past `maxDepth`.
/// - Complexity: O(n) in the input length (duplicate-key checks are O(m) per object of m
///   members using a set once an object grows past a few members).
public struct JSONParser: ~Copyable {
    private let base: UnsafePointer<UInt8>
    private let end: Int
    private var pos = 0
    private let maxDepth: Int

    private init(base: UnsafePointer<UInt8>, count: Int, maxDepth: Int) {
        self.base = base
        self.end = count
        self.maxDepth = maxDepth
    }

    /// Parses exactly one JSON value (surrounded by optional whitespace).
    public static func parse(_ bytes: UnsafeBufferPointer<UInt8>, maxDepth: Int = 64) throws(JSONParseError) -> JSON {
        guard let base = bytes.baseAddress, bytes.count > 0 else {
            throw JSONParseError(kind: .syntax, offset: 0, reason: "empty input")
        }
        var p = JSONParser(base: base, count: bytes.count, maxDepth: maxDepth)
        p.skipWhitespace()
        let v = try p.value(depth: 0)
        p.skipWhitespace()
        guard p.pos == p.end else { throw p.fail("unexpected data after the JSON value") }
        return v
    }

    /// Parses exactly one JSON value from a byte collection.
    public static func parse<C: Collection<UInt8>>(_ bytes: C, maxDepth: Int = 64) throws(JSONParseError) -> JSON {
        let result: Result<JSON, JSONParseError>? = bytes.withContiguousStorageIfAvailable { buf in
            Result { () throws(JSONParseError) in try parse(buf, maxDepth: maxDepth) }
        }
        if let result { return try result.get() }
        let copy = Array(bytes)
        return try copy.withUnsafeBufferPointer { buf throws(JSONParseError) in try parse(buf, maxDepth: maxDepth) }
    }

    /// Parses a JSON text given as a `String`.
    public static func parse(_ text: String, maxDepth: Int = 64) throws(JSONParseError) -> JSON {
        try parse(Array(text.utf8), maxDepth: maxDepth)
    }

    private func fail(_ reason: String) -> JSONParseError {
        JSONParseError(kind: .syntax, offset: pos, reason: reason)
    }

    @inline(__always) private func peek() -> UInt8? { pos < end ? base[pos] : nil }

    @inline(__always) private mutating func skipWhitespace() {
        while pos < end {
            let c = base[pos]
            guard c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 else { return }
            pos += 1
        }
    }

    private mutating func expectLiteral(_ literal: StaticString) throws(JSONParseError) {
        let n = literal.utf8CodeUnitCount
        guard end - pos >= n, memcmpEqual(base + pos, literal.utf8Start, n) else {
            throw fail("invalid literal")
        }
        pos += n
    }

    private mutating func value(depth: Int) throws(JSONParseError) -> JSON {
        guard let c = peek() else { throw fail("unexpected end of input") }
        switch c {
        case UInt8(ascii: "{"): return try object(depth: depth + 1)
        case UInt8(ascii: "["): return try array(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectLiteral("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
        default: throw fail("unexpected character")
        }
    }

    private mutating func checkDepth(_ depth: Int) throws(JSONParseError) {
        if depth > maxDepth {
            throw JSONParseError(kind: .tooDeep(max: maxDepth), offset: pos, reason: "nesting deeper than \(maxDepth)")
        }
    }

    private mutating func object(depth: Int) throws(JSONParseError) -> JSON {
        try checkDepth(depth)
        pos += 1  // {
        var members: [JSONMember] = []
        members.reserveCapacity(4)
        var seen: Set<[UInt8]>? = nil
        skipWhitespace()
        if peek() == UInt8(ascii: "}") { pos += 1; return .object(members) }
        while true {
            skipWhitespace()
            guard peek() == UInt8(ascii: "\"") else { throw fail("expected a string key") }
            let keyStart = pos
            let key = try string()
            // Duplicate keys make a request ambiguous: reject them (names compare by their
            // UTF-8 bytes, as RFC 8259 says, not by Unicode equivalence).
            if members.count < 8 {
                if members.contains(where: { $0.key.utf8Equals(key) }) {
                    pos = keyStart
                    throw fail("duplicate key \"\(key)\"")
                }
            } else {
                if seen == nil { seen = Set(members.map { Array($0.key.utf8) }) }
                if seen?.insert(Array(key.utf8)).inserted == false {
                    pos = keyStart
                    throw fail("duplicate key \"\(key)\"")
                }
            }
            skipWhitespace()
            guard peek() == UInt8(ascii: ":") else { throw fail("expected ':'") }
            pos += 1
            skipWhitespace()
            members.append(JSONMember(key, try value(depth: depth)))
            skipWhitespace()
            guard let c = peek() else { throw fail("unterminated object") }
            pos += 1
            if c == UInt8(ascii: ",") { continue }
            if c == UInt8(ascii: "}") { return .object(members) }
            pos -= 1
            throw fail("expected ',' or '}'")
        }
    }

    private mutating func array(depth: Int) throws(JSONParseError) -> JSON {
        try checkDepth(depth)
        pos += 1  // [
        var elements: [JSON] = []
        skipWhitespace()
        if peek() == UInt8(ascii: "]") { pos += 1; return .array(elements) }
        while true {
            skipWhitespace()
            elements.append(try value(depth: depth))
            skipWhitespace()
            guard let c = peek() else { throw fail("unterminated array") }
            pos += 1
            if c == UInt8(ascii: ",") { continue }
            if c == UInt8(ascii: "]") { return .array(elements) }
            pos -= 1
            throw fail("expected ',' or ']'")
        }
    }

    private mutating func number() throws(JSONParseError) -> String {
        let start = pos
        if peek() == UInt8(ascii: "-") { pos += 1 }
        guard let first = peek(), isDigit(first) else { throw fail("invalid number") }
        pos += 1
        if first != UInt8(ascii: "0") { while let c = peek(), isDigit(c) { pos += 1 } }
        if peek() == UInt8(ascii: ".") {
            pos += 1
            guard let c = peek(), isDigit(c) else { throw fail("invalid number: digit expected after '.'") }
            while let c = peek(), isDigit(c) { pos += 1 }
        }
        if let e = peek(), e == UInt8(ascii: "e") || e == UInt8(ascii: "E") {
            pos += 1
            if let s = peek(), s == UInt8(ascii: "+") || s == UInt8(ascii: "-") { pos += 1 }
            guard let c = peek(), isDigit(c) else { throw fail("invalid number: digit expected in exponent") }
            while let c = peek(), isDigit(c) { pos += 1 }
        }
        if let c = peek(), isDigit(c) { throw fail("invalid number: leading zero") }
        return String(decoding: UnsafeBufferPointer(start: base + start, count: pos - start), as: UTF8.self)
    }

    @inline(__always) private func isDigit(_ c: UInt8) -> Bool { c &- UInt8(ascii: "0") < 10 }

    private mutating func string() throws(JSONParseError) -> String {
        pos += 1  // opening quote
        let start = pos
        // Fast path: no escapes; ASCII needs no UTF-8 validation.
        var high: UInt8 = 0
        while pos < end {
            let c = base[pos]
            if c == UInt8(ascii: "\"") {
                let raw = UnsafeBufferPointer(start: base + start, count: pos - start)
                if high < 0x80 {
                    pos += 1
                    return String(decoding: raw, as: UTF8.self)
                }
                guard let s = String(validating: raw, as: UTF8.self) else {
                    pos = start
                    throw fail("string is not valid UTF-8")
                }
                pos += 1
                return s
            }
            if c == UInt8(ascii: "\\") { break }
            if c < 0x20 { throw fail("control character in string") }
            high |= c
            pos += 1
        }
        guard pos < end else { throw fail("unterminated string") }
        // Slow path: decode escapes into a byte buffer.
        var out = [UInt8](UnsafeBufferPointer(start: base + start, count: pos - start))
        while pos < end {
            let c = base[pos]
            if c == UInt8(ascii: "\"") {
                pos += 1
                guard let s = String(validating: out, as: UTF8.self) else { throw fail("string is not valid UTF-8") }
                return s
            }
            if c < 0x20 { throw fail("control character in string") }
            if c != UInt8(ascii: "\\") {
                out.append(c)
                pos += 1
                continue
            }
            pos += 1
            guard let e = peek() else { break }
            pos += 1
            switch e {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4()
                if scalar >= 0xD800 && scalar < 0xDC00 {
                    // A high surrogate must be followed by an escaped low surrogate.
                    guard end - pos >= 6, base[pos] == UInt8(ascii: "\\"), base[pos + 1] == UInt8(ascii: "u") else {
                        throw fail("unpaired surrogate in \\u escape")
                    }
                    pos += 2
                    let low = try hex4()
                    guard low >= 0xDC00 && low < 0xE000 else { throw fail("unpaired surrogate in \\u escape") }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if scalar >= 0xDC00 && scalar < 0xE000 {
                    throw fail("unpaired surrogate in \\u escape")
                }
                guard let u = Unicode.Scalar(scalar) else { throw fail("invalid \\u escape") }
                UTF8.encode(u) { out.append($0) }
            default:
                pos -= 1
                throw fail("invalid escape")
            }
        }
        throw fail("unterminated string")
    }

    private mutating func hex4() throws(JSONParseError) -> UInt32 {
        guard end - pos >= 4 else { throw fail("invalid \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = base[pos]
            let d: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = c - UInt8(ascii: "A") + 10
            default: throw fail("invalid \\u escape")
            }
            v = v << 4 | UInt32(d)
            pos += 1
        }
        return v
    }
}

@inline(__always)
private func memcmpEqual(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>, _ n: Int) -> Bool {
    for i in 0..<n where a[i] != b[i] { return false }
    return true
}
