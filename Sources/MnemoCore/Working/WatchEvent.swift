/// What a watch is told about one change: `{rev, tier, kind, ns, key|id}`.
public struct WatchEvent: Sendable, Equatable {
    /// The change's revision.
    public var rev: Int64
    /// `wm`, `claim`, `task`, `inbox` or `result`.
    public var tier: String
    /// What happened, per tier: wm `set|del|expire|clear`; claim `acquire|renew|release|expire`;
    /// task the new state; inbox `post|ack|drop`; result `put|forget`.
    public var kind: String
    /// Namespace.
    public var ns: String
    /// Key (wm), resource (claim), task (task) or idempotency key (result).
    public var key: String?
    /// Inbox entry id.
    public var id: String?
}

extension Change {
    /// The events a watch sees for this change.
    var events: [WatchEvent] {
        switch self {
        case .put(let ns, let key, let item):
            return [WatchEvent(rev: item.version, tier: "wm", kind: "set", ns: ns, key: key)]
        case .remove(let ns, let key, let rev, let expired):
            return [WatchEvent(rev: rev, tier: "wm", kind: expired ? "expire" : "del", ns: ns, key: key)]
        case .clear(let ns, let rev):
            return [WatchEvent(rev: rev, tier: "wm", kind: "clear", ns: ns)]
        case .batch(_, let changes):
            return changes.flatMap(\.events)
        case .claim(let ns, let resource, let c):
            return [WatchEvent(rev: c.token, tier: "claim", kind: "acquire", ns: ns, key: resource)]
        case .unclaim(let ns, let resource, let rev, _, let expired):
            return [WatchEvent(rev: rev, tier: "claim", kind: expired ? "expire" : "release", ns: ns, key: resource)]
        case .result(let ns, let key, let r):
            return [WatchEvent(rev: r.provenance.rev, tier: "result", kind: "put", ns: ns, key: key)]
        case .forgetResult(let ns, let key, let rev):
            return [WatchEvent(rev: rev, tier: "result", kind: "forget", ns: ns, key: key)]
        case .task(let ns, let task, let step):
            return [WatchEvent(rev: step.provenance.rev, tier: "task", kind: step.to.rawValue, ns: ns, key: task)]
        case .post(let ns, let e):
            return [WatchEvent(rev: e.provenance.rev, tier: "inbox", kind: "post", ns: ns, id: e.id)]
        case .ack(let ns, let ids, let rev):
            return ids.map { WatchEvent(rev: rev, tier: "inbox", kind: "ack", ns: ns, id: $0) }
        case .dropEntry(let ns, let id, let rev):
            return [WatchEvent(rev: rev, tier: "inbox", kind: "drop", ns: ns, id: id)]
        }
    }
}
