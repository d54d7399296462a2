import MnemoCore
import MnemoProtocol
import Testing

let alice = Caller(agent: "a", principal: "local", uid: 1, gid: 1, pid: 2)
let bob = Caller(agent: "b", principal: "ops", uid: 1001, gid: 100, pid: 4242)

/// A store on a manual clock, and the clock.
func makeStore(_ limits: Limits = Limits()) -> (WorkingMemory, ManualTime) {
    let time = ManualTime()
    return (WorkingMemory(limits: limits, time: time), time)
}

/// Limits with one value changed (the change itself must be valid).
func limits(_ name: String, _ value: Int) throws -> Limits {
    var l = Limits()
    try l.set(name, to: value)
    return l
}

/// Compact JSON bytes of a value.
func bytes(_ v: JSON) -> [UInt8] { v.bytes }

extension WorkingMemory {
    /// A plain write of a JSON value by `alice` unless told otherwise.
    @discardableResult
    func put(_ ns: String, _ key: String, _ value: JSON, ttl: Int64? = nil, ifVersion: Int64? = nil,
             ifAbsent: Bool = false, by caller: Caller = alice) throws(WireError) -> WriteResult {
        try set(Write(ns: ns, key: key, value: value.bytes, ttlMs: ttl, ifVersion: ifVersion, ifAbsent: ifAbsent),
                by: caller)
    }

    /// The value at `ns/key` parsed back, or nil.
    func value(_ ns: String, _ key: String) throws -> JSON? {
        guard let item = get(ns: ns, key: key) else { return nil }
        return try JSONParser.parse(item.value)
    }

    /// Every live key of a namespace, all pages.
    func allKeys(_ ns: String, prefix: String? = nil) -> [String] {
        var out: [String] = []
        var cursor: String? = nil
        repeat {
            let page = list(ns: ns, prefix: prefix, limit: 1000, cursor: cursor)
            out += page.items.map(\.key)
            cursor = page.cursor
        } while cursor != nil
        return out
    }
}

/// The WireError thrown by `body`, or nil (recorded as a test failure) if it did not throw.
func wireError<T>(
    sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws(WireError) -> T
) -> WireError? {
    do {
        _ = try body()
        Issue.record("expected a WireError", sourceLocation: sourceLocation)
        return nil
    } catch {
        return error
    }
}
