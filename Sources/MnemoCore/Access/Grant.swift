import Foundation

/// Permissions on the namespaces a pattern covers.
///
/// A pattern is `/`-separated segments: a literal segment, `*` (any one segment), or
/// `{agent}` (the session's own agent name, bound at `session.hello`); a trailing `**`,
/// or `**` alone, is allowed and changes nothing. A pattern covers a namespace when it
/// matches the namespace's leading segments: `wf/*` covers `wf/42` and `wf/42/tasks`,
/// not `wf`; `**` covers every namespace. So a grant on a namespace is a grant on its
/// whole subtree, as the wire contract's `grant` describes.
public struct Grant: Sendable, Equatable {
    /// The pattern as configured.
    public let pattern: String
    /// What it allows.
    public let perms: Perms
    /// The segments to match (the trailing `**` removed).
    let segments: [String]

    /// A grant; nil when the pattern is not a valid one.
    public init?(pattern: String, perms: Perms) {
        var parts = pattern == "**" ? [] : pattern.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        if parts.last == "**" { parts.removeLast() }
        for part in parts {
            guard part == "*" || part == "{agent}" || Self.isLiteral(part) else { return nil }
        }
        guard pattern == "**" || !parts.isEmpty else { return nil }
        self.pattern = pattern
        self.perms = perms
        self.segments = parts
    }

    private static func isLiteral(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.allSatisfy { Validate.isSegmentByte($0) }
    }

    /// This grant with `{agent}` replaced by `agent`.
    public func bound(to agent: String) -> Grant {
        guard segments.contains("{agent}") else { return self }
        let bound = pattern.replacingOccurrences(of: "{agent}", with: agent)
        return Grant(pattern: bound, perms: perms) ?? self
    }

    /// Whether the pattern covers namespace `ns` (and so its whole subtree).
    /// - Complexity: O(segments).
    public func covers(_ ns: String) -> Bool {
        guard !segments.isEmpty else { return true }
        var ns = ns
        return ns.withUTF8 { bytes in
            var start = 0
            for want in segments {
                guard start <= bytes.count else { return false }
                var end = start
                while end < bytes.count && bytes[end] != UInt8(ascii: "/") { end += 1 }
                if want != "*" && !want.utf8.elementsEqual(UnsafeBufferPointer(rebasing: bytes[start..<end])) { return false }
                start = end + 1
            }
            return true
        }
    }
}
