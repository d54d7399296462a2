/// A JSON value as it travels on the wire.
///
/// Numbers keep their exact source text (validated against the JSON grammar), so a value
/// stored by one client is returned byte-for-byte to another, big integers included.
/// Objects keep their members in source order.
public enum JSON: Sendable, Hashable {
    case null
    case bool(Bool)
    /// A number's JSON text, e.g. `"42"`, `"-1.5e3"`.
    case number(String)
    case string(String)
    case array([JSON])
    case object([JSONMember])

    /// An integer-valued number.
    public static func int(_ value: some BinaryInteger) -> JSON { .number(String(value)) }

    /// The member named `key` of an object, or nil.
    public subscript(key: String) -> JSON? {
        guard case .object(let members) = self else { return nil }
        for member in members where member.key == key { return member.value }
        return nil
    }

    /// The string, when this is a string.
    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// The boolean, when this is a boolean.
    public var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    /// The value as an exact `Int64`, when this is a number with an integral value in range
    /// (`1000`, `1000.0` and `1e3` all qualify; `1.5` does not).
    public var int64Value: Int64? {
        guard case .number(let text) = self else { return nil }
        if let i = Int64(text) { return i }
        guard let d = Double(text), d.rounded() == d, d >= -9.2e18, d <= 9.2e18 else { return nil }
        return Int64(d)
    }

    /// The value as a `Double`, when this is a number.
    public var doubleValue: Double? {
        if case .number(let text) = self { return Double(text) }
        return nil
    }

    /// The members, when this is an object.
    public var objectValue: [JSONMember]? {
        if case .object(let m) = self { return m }
        return nil
    }

    /// The elements, when this is an array.
    public var arrayValue: [JSON]? {
        if case .array(let a) = self { return a }
        return nil
    }

    /// Whether this is `null`.
    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// Compact UTF-8 serialization.
    public var bytes: [UInt8] {
        var w = JSONWriter()
        w.value(self)
        return w.bytes
    }

    /// Compact serialization as a `String`.
    public var text: String { String(decoding: bytes, as: UTF8.self) }

    /// Equality as JSON values: object member order does not matter and numbers compare
    /// by value (`1`, `1.0` and `1e0` are equal).
    public func semanticallyEquals(_ other: JSON) -> Bool {
        switch (self, other) {
        case (.null, .null): return true
        case (.bool(let a), .bool(let b)): return a == b
        case (.number(let a), .number(let b)):
            return a == b || DecimalText(a) == DecimalText(b)
        case (.string(let a), .string(let b)): return a == b
        case (.array(let a), .array(let b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.semanticallyEquals($1) }
        case (.object(let a), .object(let b)):
            guard a.count == b.count else { return false }
            return a.allSatisfy { m in other[m.key].map { m.value.semanticallyEquals($0) } ?? false }
        default: return false
        }
    }
}

/// One `"key": value` member of a JSON object.
public struct JSONMember: Sendable, Hashable {
    /// The member's name.
    public var key: String
    /// The member's value.
    public var value: JSON

    /// A member.
    public init(_ key: String, _ value: JSON) {
        self.key = key
        self.value = value
    }
}

extension JSON: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    /// A string literal.
    public init(stringLiteral value: String) { self = .string(value) }
    /// An integer literal.
    public init(integerLiteral value: Int) { self = .number(String(value)) }
    /// A boolean literal.
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    /// An array literal.
    public init(arrayLiteral elements: JSON...) { self = .array(elements) }
    /// An object literal; member order is kept.
    public init(dictionaryLiteral elements: (String, JSON)...) {
        self = .object(elements.map { JSONMember($0.0, $0.1) })
    }
}

/// A JSON number's exact value as sign, significant digits and exponent, so that `1`,
/// `1.0`, `10e-1` compare equal and no two different numbers do (no rounding to Double).
struct DecimalText: Equatable {
    var negative = false
    var digits: [UInt8] = []
    var exponent = 0

    init(_ text: String) {
        var intDigits: [UInt8] = []
        var fracDigits: [UInt8] = []
        var exp = 0
        var expSign = 1
        var part = 0  // 0 integer, 1 fraction, 2 exponent
        for c in text.utf8 {
            switch c {
            case UInt8(ascii: "-"): if part == 2 { expSign = -1 } else { negative = true }
            case UInt8(ascii: "+"): break
            case UInt8(ascii: "."): part = 1
            case UInt8(ascii: "e"), UInt8(ascii: "E"): part = 2
            default:
                let d = c &- 48
                switch part {
                case 0: intDigits.append(d)
                case 1: fracDigits.append(d)
                default: exp = min(exp * 10 + Int(d), 1_000_000_000)
                }
            }
        }
        var all = intDigits + fracDigits
        var e = expSign * exp - fracDigits.count
        while let last = all.last, last == 0 { all.removeLast(); e += 1 }
        while let first = all.first, first == 0 { all.removeFirst() }
        digits = all
        exponent = all.isEmpty ? 0 : e
        if all.isEmpty { negative = false }
    }
}
