/// What a grant allows: `r` read (get, list, query, search, watch, inbox.read), `w` write
/// (every mutation, claims, tasks, inbox post and ack), `a` admin (admin.*, audit.query,
/// wm.clear, ep.summarize, ep.prune, export, import, snapshot).
public struct Perms: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let read = Perms(rawValue: 1)
    public static let write = Perms(rawValue: 2)
    public static let admin = Perms(rawValue: 4)

    /// Parses letters such as `rw` or `rwa` (each at most once, in any order).
    public init?(letters: String) {
        var p: Perms = []
        for c in letters {
            let bit: Perms
            switch c {
            case "r": bit = .read
            case "w": bit = .write
            case "a": bit = .admin
            default: return nil
            }
            guard !p.contains(bit) else { return nil }
            p.insert(bit)
        }
        guard !p.isEmpty else { return nil }
        self = p
    }

    /// The letters, in the order `r`, `w`, `a`.
    public var letters: String {
        (contains(.read) ? "r" : "") + (contains(.write) ? "w" : "") + (contains(.admin) ? "a" : "")
    }
}
