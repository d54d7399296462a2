/// Named request parameters with typed, validating accessors.
///
/// Every accessor throws ``WireError/invalidParams(_:_:)`` naming the field, so each bad
/// input gets a precise -32602 answer and nothing is applied.
public struct Params: Sendable {
    /// The members as received.
    public let members: [JSONMember]
    /// Where this object sits in the request, e.g. `ops[2]`; errors name `ops[2].key`.
    public let path: String

    /// Wraps an object's members found at `path` (empty for the top level).
    public init(_ members: [JSONMember], path: String = "") {
        self.members = members
        self.path = path
    }

    /// The name of field `key` as errors report it.
    public func name(_ key: String) -> String { path.isEmpty ? key : path + "." + key }

    /// Rejects any member not in `allowed` (the contract forbids unknown fields, which also
    /// stops a client from smuggling in `agent` or `provenance`).
    public func allowOnly(_ allowed: [StaticString]) throws(WireError) {
        outer: for m in members {
            for a in allowed where a.withUTF8Buffer({ m.key.utf8Equals($0) }) { continue outer }
            throw .invalidParams(name(m.key), "unknown parameter")
        }
    }

    /// The raw value of `key`, nil when absent or null.
    public subscript(key: String) -> JSON? {
        for m in members where m.key == key {
            if m.value.isNull { return nil }
            return m.value
        }
        return nil
    }

    /// Whether `key` is present (even as null).
    public func has(_ key: String) -> Bool { members.contains { $0.key == key } }

    /// A required value of any JSON type (null allowed).
    public func any(_ key: String) throws(WireError) -> JSON {
        for m in members where m.key == key { return m.value }
        throw .invalidParams(name(key), "required")
    }

    /// A required string.
    public func string(_ key: String) throws(WireError) -> String {
        guard let v = self[key] else { throw .invalidParams(name(key), "required") }
        guard let s = v.stringValue else { throw .invalidParams(name(key), "must be a string") }
        return s
    }

    /// An optional string.
    public func optionalString(_ key: String) throws(WireError) -> String? {
        guard let v = self[key] else { return nil }
        guard let s = v.stringValue else { throw .invalidParams(name(key), "must be a string") }
        return s
    }

    /// An optional integer within `range`.
    public func optionalInt(_ key: String, in range: ClosedRange<Int64>) throws(WireError) -> Int64? {
        guard let v = self[key] else { return nil }
        guard let i = v.int64Value else { throw .invalidParams(name(key), "must be an integer") }
        guard range.contains(i) else {
            throw .invalidParams(name(key), "must be between \(range.lowerBound) and \(range.upperBound)")
        }
        return i
    }

    /// A required integer within `range`.
    public func int(_ key: String, in range: ClosedRange<Int64>) throws(WireError) -> Int64 {
        guard let i = try optionalInt(key, in: range) else { throw .invalidParams(name(key), "required") }
        return i
    }

    /// An optional boolean.
    public func optionalBool(_ key: String) throws(WireError) -> Bool? {
        guard let v = self[key] else { return nil }
        guard let b = v.boolValue else { throw .invalidParams(name(key), "must be a boolean") }
        return b
    }

    /// An optional array.
    public func optionalArray(_ key: String) throws(WireError) -> [JSON]? {
        guard let v = self[key] else { return nil }
        guard let a = v.arrayValue else { throw .invalidParams(name(key), "must be an array") }
        return a
    }

    /// An optional object, as `Params`.
    public func optionalObject(_ key: String) throws(WireError) -> Params? {
        guard let v = self[key] else { return nil }
        guard let o = v.objectValue else { throw .invalidParams(name(key), "must be an object") }
        return Params(o, path: name(key))
    }
}
