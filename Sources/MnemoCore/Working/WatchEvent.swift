/// What a watch is told about one change: `{rev, tier, kind, ns, key|id}`.
public struct WatchEvent: Sendable, Equatable {
    /// The change's revision.
    public var rev: Int64
    /// `wm`, `claim`, `task`, `inbox`, `result` or `ep`.
    public var tier: String
    /// What happened, per tier: wm `set|ttl|del|expire|clear` (`expire` also when a lease
    /// ended); claim `acquire|renew|release|expire`; task the new state; inbox
    /// `post|ack|drop`; result `put|forget`; ep `append|summarize|pin|unpin` (with the
    /// record's id) and `prune` (per namespace, no id).
    public var kind: String
    /// Namespace.
    public var ns: String
    /// Key (wm), resource (claim), task (task, result).
    public var key: String?
    /// Inbox entry id, or idempotency key (result).
    public var id: String?

    init(rev: Int64, tier: String, kind: String, ns: String, key: String? = nil, id: String? = nil) {
        self.rev = rev
        self.tier = tier
        self.kind = kind
        self.ns = ns
        self.key = key
        self.id = id
    }
}

