import MnemoProtocol

extension WorkingMemory {
    /// Posts an entry to `to` (an agent name or a role) in `ns`'s inbox.
    /// - Throws: `LIMIT_EXCEEDED` when the namespace's inbox is full.
    /// - Complexity: O(1).
    public func post(ns: String, to: String, type: String, content: JSON, by caller: Caller) throws(WireError) -> (id: String, rev: Int64) {
        try Validate.agent(to, field: "to")
        try Validate.identifier(type, field: "type", max: 64)
        let bytes = content.bytes
        try checkValue(bytes)
        let now = time.nowMs()
        return try write { s throws(WireError) in
            let count = s.inboxes[ns]?.count ?? 0
            guard count < limits.maxInboxEntries else {
                throw .limit("max_inbox_entries", max: limits.maxInboxEntries, "inbox of \(ns) holds \(count) entries")
            }
            try reserve(&s, adding: 240 + bytes.count + type.utf8.count + to.utf8.count, freeing: 0, by: caller.principal)
            let rev = s.rev + 1
            let entry = InboxEntry(id: String(rev), from: caller.agent, to: to, type: type, content: bytes,
                                   provenance: Provenance(caller: caller, at: now, rev: rev), acked: false,
                                   expiresAt: now + inboxRetentionMs)
            try commit(&s, .post(ns: ns, entry))
            return (entry.id, rev)
        }
    }

    /// The entries of `ns` addressed to the caller (its agent name or principal), oldest
    /// first.
    /// - Complexity: O(entries in the namespace).
    public func inbox(ns: String, for caller: Caller, unackedOnly: Bool, limit: Int) -> [InboxEntry] {
        let now = time.nowMs()
        return state.withLock { s in
            guard let box = s.inboxes[ns] else { return [] }
            let mine = box.values.filter {
                ($0.to == caller.agent || $0.to == caller.principal) && (!unackedOnly || !$0.acked) && $0.expiresAt > now
            }
            return Array(mine.sorted { $0.provenance.rev < $1.provenance.rev }.prefix(limit))
        }
    }

    /// Acknowledges the caller's entries among `ids` (others are ignored).
    /// - Returns: how many entries became acknowledged.
    public func ack(ns: String, ids: [String], by caller: Caller) throws(WireError) -> Int {
        try write { s throws(WireError) in
            guard let box = s.inboxes[ns] else { return 0 }
            let mine = Array(Set(ids)).filter { id in
                box[id].map { !$0.acked && ($0.to == caller.agent || $0.to == caller.principal) } ?? false
            }
            guard !mine.isEmpty else { return 0 }
            try commit(&s, .ack(ns: ns, ids: mine.sorted(), rev: s.rev + 1))
            return mine.count
        }
    }
}
