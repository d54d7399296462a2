import MnemoProtocol

/// Validation of the identifiers the contract constrains.
public enum Validate {
    /// A namespace: `/`-separated segments of `[A-Za-z0-9._:-]`, at most 16 segments and
    /// 512 bytes.
    public static func namespace(_ ns: String, field: String = "ns") throws(WireError) {
        let utf8 = ns.utf8
        guard !utf8.isEmpty else { throw .invalidParams(field, "must not be empty") }
        guard utf8.count <= Limits.maxNamespaceBytes else {
            throw .invalidParams(field, "longer than \(Limits.maxNamespaceBytes) bytes")
        }
        var segments = 1
        var segmentLength = 0
        for c in utf8 {
            if c == UInt8(ascii: "/") {
                guard segmentLength > 0 else { throw .invalidParams(field, "empty segment in \"\(ns)\"") }
                segments += 1
                segmentLength = 0
            } else {
                guard isSegmentByte(c) else {
                    throw .invalidParams(field, "segments may hold only A-Z a-z 0-9 . _ : - (got \"\(ns)\")")
                }
                segmentLength += 1
            }
        }
        guard segmentLength > 0 else { throw .invalidParams(field, "empty segment in \"\(ns)\"") }
        guard segments <= Limits.maxNamespaceSegments else {
            throw .invalidParams(field, "more than \(Limits.maxNamespaceSegments) segments")
        }
    }

    /// An agent name: `[A-Za-z0-9._:-]{1,64}`.
    public static func agent(_ name: String, field: String = "agent") throws(WireError) {
        guard !name.utf8.isEmpty, name.utf8.count <= Limits.maxAgentBytes, name.utf8.allSatisfy(isSegmentByte) else {
            throw .invalidParams(field, "must match [A-Za-z0-9._:-]{1,\(Limits.maxAgentBytes)}")
        }
    }

    /// A non-empty string of at most `max` bytes.
    public static func identifier(_ s: String, field: String, max: Int = Limits.maxIdentifierBytes) throws(WireError) {
        guard !s.utf8.isEmpty else { throw .invalidParams(field, "must not be empty") }
        guard s.utf8.count <= max else { throw .invalidParams(field, "longer than \(max) bytes") }
    }

    @inline(__always) static func isSegmentByte(_ c: UInt8) -> Bool {
        switch c {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: ":"),
            UInt8(ascii: "-"):
            return true
        default: return false
        }
    }
}

extension Validate {
    /// Whether namespace `ns` is `prefix` or below it, by whole segments (`wf/4` covers
    /// `wf/4/x`, not `wf/42`); a nil prefix covers everything.
    public static func covers(_ prefix: String?, _ ns: String) -> Bool {
        guard let prefix else { return true }
        if ns == prefix { return true }
        return ns.utf8.count > prefix.utf8.count && ns.hasPrefix(prefix)
            && ns.utf8.dropFirst(prefix.utf8.count).first == UInt8(ascii: "/")
    }
}
