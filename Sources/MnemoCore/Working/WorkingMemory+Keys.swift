import MnemoProtocol

extension WorkingMemory {
    /// A write of one key.
    public struct Write: Sendable {
        /// Namespace (validated by the caller with ``Validate/namespace(_:field:)``).
        public var ns: String
        /// Key.
        public var key: String
        /// Compact JSON of the value.
        public var value: [UInt8]
        /// Time to live; nil makes the key persistent (a plain set clears an earlier TTL).
        public var ttlMs: Int64?
        /// Apply only if the key's current version is this.
        public var ifVersion: Int64?
        /// Apply only if the key does not exist.
        public var ifAbsent: Bool
        /// Tie the key to this claim of the namespace: deleted when the claim ends.
        public var lease: Lease?
        /// Apply only if this is the current claim of the namespace's resource.
        public var fence: Lease?
        /// Client-supplied task link, kept in provenance.
        public var task: String?
        /// Client-supplied derivation links, kept in provenance.
        public var derivedFrom: [String]?

        /// A write.
        public init(ns: String, key: String, value: [UInt8], ttlMs: Int64? = nil, ifVersion: Int64? = nil,
                    ifAbsent: Bool = false, lease: Lease? = nil, fence: Lease? = nil, task: String? = nil,
                    derivedFrom: [String]? = nil) {
            self.ns = ns
            self.key = key
            self.value = value
            self.ttlMs = ttlMs
            self.ifVersion = ifVersion
            self.ifAbsent = ifAbsent
            self.lease = lease
            self.fence = fence
            self.task = task
            self.derivedFrom = derivedFrom
        }
    }

    /// The outcome of a write.
    public struct WriteResult: Sendable, Equatable {
        /// The key's new version.
        public var version: Int64
        /// The revision the write took.
        public var rev: Int64
        /// Expiry, if the key has a TTL.
        public var expiresAt: Int64?
    }

    /// Sets a key, subject to its guards.
    /// - Throws: `CONFLICT` (with the current version) when a guard fails, `FENCED` for a
    ///   stale fence or lease, `LIMIT_EXCEEDED` when the value or the store budget is
    ///   exceeded, `UNAVAILABLE` when it cannot be journaled, -32602 for a bad key or TTL.
    ///   Nothing is applied on error.
    /// - Complexity: O(1) amortized (O(log n) with a TTL).
    public func set(_ w: Write, by caller: Caller) throws(WireError) -> WriteResult {
        try checkKey(w.key)
        try checkValue(w.value)
        if let ttl = w.ttlMs { try checkTTL(ttl) }
        if w.ifAbsent && w.ifVersion != nil {
            throw .invalidParams("if_absent", "cannot be combined with if_version")
        }
        let now = time.nowMs()
        return try write { s throws(WireError) in
            if let f = w.fence { try checkFence(&s, ns: w.ns, resource: f.resource, token: f.token, orDecision: true) }
            if let l = w.lease { try checkFence(&s, ns: w.ns, resource: l.resource, token: l.token) }
            let old = live(&s, w.ns, w.key, now: now)
            if w.ifAbsent, let old { throw Self.conflict(w.ns, w.key, current: old.version) }
            if let expected = w.ifVersion, old?.version != expected {
                throw Self.conflict(w.ns, w.key, current: old?.version)
            }
            let freeing = old.map { WorkingItem.cost(key: w.key, valueBytes: $0.value.count) } ?? 0
            try reserve(&s, adding: WorkingItem.cost(key: w.key, valueBytes: w.value.count), freeing: freeing, by: caller.principal,
                        freeingOwn: old?.provenance.principal == caller.principal ? freeing : 0)
            let rev = s.rev + 1
            let expiresAt = w.ttlMs.map { now + $0 } ?? 0
            let item = WorkingItem(
                value: w.value, version: rev, expiresAt: expiresAt,
                provenance: Provenance(caller: caller, at: now, rev: rev, task: w.task, derivedFrom: w.derivedFrom),
                lease: w.lease)
            try commit(&s, .put(ns: w.ns, key: w.key, item: item))
            return WriteResult(version: rev, rev: rev, expiresAt: expiresAt == 0 ? nil : expiresAt)
        }
    }

    /// The live item at `ns/key`, or nil. An expired key is never returned.
    /// - Complexity: O(1).
    public func get(ns: String, key: String) -> WorkingItem? {
        let now = time.nowMs()
        return state.withLock { live(&$0, ns, key, now: now) }
    }

    /// Deletes a key.
    /// - Returns: the revision of the deletion, or nil if there was no live key.
    /// - Throws: `CONFLICT` when `ifVersion` does not match (also when the key is absent),
    ///   `FENCED` for a stale fence.
    /// - Complexity: O(1).
    public func delete(ns: String, key: String, ifVersion: Int64? = nil, fence: Lease? = nil,
                       by caller: Caller) throws(WireError) -> Int64? {
        try checkKey(key)
        let now = time.nowMs()
        return try write { s throws(WireError) in
            if let f = fence { try checkFence(&s, ns: ns, resource: f.resource, token: f.token, orDecision: true) }
            let old = live(&s, ns, key, now: now)
            if let expected = ifVersion, old?.version != expected {
                throw Self.conflict(ns, key, current: old?.version)
            }
            guard old != nil else { return nil }
            try commit(&s, .remove(ns: ns, key: key, rev: s.rev + 1, expired: false))
            return s.rev
        }
    }

    /// One entry of a listing.
    public struct Listed: Sendable, Equatable {
        /// The key.
        public var key: String
        /// Its version.
        public var version: Int64
        /// Its expiry, if any.
        public var expiresAt: Int64?
    }

    /// Lists live keys of a namespace in byte order, starting after `cursor` (the last key
    /// of the previous page), keeping those that start with `prefix`.
    /// - Returns: up to `limit` items, and a cursor when another live key follows.
    /// - Complexity: O(log n + limit), plus O(n log n) once after keys were added or removed.
    public func list(ns: String, prefix: String?, limit: Int, cursor: String?) -> (items: [Listed], cursor: String?) {
        let now = time.nowMs()
        let monoNs = time.monotonicNs()
        return state.withLock { s in
            guard var space = s.spaces[ns] else { return ([], nil) }
            s.spaces[ns] = nil  // avoid a copy while the sorted cache is filled in
            let keys = space.orderedKeys()
            s.spaces[ns] = space
            func visible(_ item: WorkingItem) -> Bool {
                guard item.isLive(at: now) else { return false }
                guard let lease = item.lease else { return true }
                guard let c = s.claims[ClaimKey(ns: ns, resource: lease.resource)] else { return false }
                return c.token == lease.token && c.expiresMono > monoNs
            }
            var start = lowerBound(keys, prefix ?? "")
            if let cursor {
                let at = lowerBound(keys, cursor)
                start = Swift.max(start, at < keys.count && keys[at] == cursor ? at + 1 : at)
            }
            var out: [Listed] = []
            var i = start
            var more = false
            while i < keys.count {
                let key = keys[i]
                if let prefix, !key.utf8.starts(with: prefix.utf8) { break }
                if let item = space.items[key], visible(item) {
                    if out.count == limit {
                        more = true
                        break
                    }
                    out.append(Listed(key: key, version: item.version, expiresAt: item.expiresAt == 0 ? nil : item.expiresAt))
                }
                i += 1
            }
            return (out, more ? out.last?.key : nil)
        }
    }

    /// Sets (`ttlMs` > 0) or removes (`ttlMs` nil) a key's TTL.
    /// - Returns: the new version and revision, or nil if there is no live key.
    /// - Complexity: O(log n).
    public func expire(ns: String, key: String, ttlMs: Int64?, by caller: Caller) throws(WireError) -> WriteResult? {
        try checkKey(key)
        if let ttlMs { try checkTTL(ttlMs) }
        let now = time.nowMs()
        return try write { s throws(WireError) in
            guard var item = live(&s, ns, key, now: now) else { return nil }
            let rev = s.rev + 1
            item.version = rev
            item.expiresAt = ttlMs.map { now + $0 } ?? 0
            item.provenance = Provenance(caller: caller, at: now, rev: rev, task: item.provenance.task,
                                         derivedFrom: item.provenance.derivedFrom)
            try commit(&s, .put(ns: ns, key: key, item: item, retimed: true))
            return WriteResult(version: rev, rev: rev, expiresAt: item.expiresAt == 0 ? nil : item.expiresAt)
        }
    }

    /// Drops every key of exactly this namespace (not of its sub-namespaces).
    /// - Returns: how many live keys were dropped and the revision taken (nil if none).
    /// - Complexity: O(keys in the namespace).
    public func clear(ns: String, by caller: Caller) throws(WireError) -> (deleted: Int, rev: Int64?) {
        let now = time.nowMs()
        return try write { s throws(WireError) in
            guard let space = s.spaces[ns] else { return (0, nil) }
            let live = space.items.values.reduce(0) { $0 + ($1.isLive(at: now) ? 1 : 0) }
            guard live > 0 else { return (0, nil) }  // only expired keys: the sweep takes them
            try commit(&s, .clear(ns: ns, rev: s.rev + 1))
            return (live, s.rev)
        }
    }

    /// A guard of a transaction.
    public enum Compare: Sendable {
        /// The key's version must be this.
        case version(ns: String, key: String, Int64)
        /// The key must not exist.
        case absent(ns: String, key: String)
    }

    /// An operation of a transaction.
    public enum Op: Sendable {
        /// Set a key (optionally with a TTL).
        case set(ns: String, key: String, value: [UInt8], ttlMs: Int64?)
        /// Delete a key.
        case del(ns: String, key: String)
    }

    /// What one transaction op did.
    public enum OpResult: Sendable, Equatable {
        /// A set: the new version and expiry.
        case set(version: Int64, expiresAt: Int64?)
        /// A delete: whether a live key was removed.
        case del(deleted: Bool)
    }

    /// Applies `ops` atomically if every compare holds; all ops share one revision.
    /// - Throws: `CONFLICT` naming the first failing compare (`index`, `ns`, `key`,
    ///   current `version`), `LIMIT_EXCEEDED` over budget. Nothing is applied on error.
    /// - Complexity: O(compares + ops).
    public func txn(compare: [Compare], ops: [Op], by caller: Caller) throws(WireError) -> (rev: Int64, results: [OpResult]) {
        guard compare.count <= limits.maxTxnOps else {
            throw .limit("max_txn_ops", max: limits.maxTxnOps, "\(compare.count) compares exceed \(limits.maxTxnOps)")
        }
        guard ops.count <= limits.maxTxnOps else {
            throw .limit("max_txn_ops", max: limits.maxTxnOps, "\(ops.count) ops exceed \(limits.maxTxnOps)")
        }
        var added = 0
        for op in ops {
            switch op {
            case .set(_, let key, let value, let ttl):
                try checkKey(key)
                try checkValue(value)
                if let ttl { try checkTTL(ttl) }
                added += WorkingItem.cost(key: key, valueBytes: value.count)
            case .del(_, let key):
                try checkKey(key)
            }
        }
        let now = time.nowMs()
        return try write { s throws(WireError) in
            for (index, c) in compare.enumerated() {
                switch c {
                case .version(let ns, let key, let expected):
                    let current = live(&s, ns, key, now: now)?.version
                    if current != expected { throw Self.conflict(ns, key, current: current, index: index) }
                case .absent(let ns, let key):
                    if let current = live(&s, ns, key, now: now)?.version {
                        throw Self.conflict(ns, key, current: current, index: index)
                    }
                }
            }
            // Budget check against the worst case (nothing freed), so nothing is applied
            // half way.
            try reserve(&s, adding: added, freeing: 0, by: caller.principal)
            // Settle expiries first (each takes its own revision), then take the txn's.
            var existedBefore: [String: Bool] = [:]
            for op in ops {
                if case .del(let ns, let key) = op { existedBefore[ns + "\u{0}" + key] = live(&s, ns, key, now: now) != nil }
            }
            let rev = s.rev + 1
            var changes: [Change] = []
            var results: [OpResult] = []
            // Later ops see earlier ones: track which keys exist as the ops go.
            var exists: [String: Bool] = [:]
            for op in ops {
                switch op {
                case .set(let ns, let key, let value, let ttl):
                    let expiresAt = ttl.map { now + $0 } ?? 0
                    changes.append(.put(ns: ns, key: key, item: WorkingItem(
                        value: value, version: rev, expiresAt: expiresAt, provenance: Provenance(caller: caller, at: now, rev: rev),
                        lease: nil)))
                    exists[ns + "\u{0}" + key] = true
                    results.append(.set(version: rev, expiresAt: expiresAt == 0 ? nil : expiresAt))
                case .del(let ns, let key):
                    let existed = exists[ns + "\u{0}" + key] ?? existedBefore[ns + "\u{0}" + key] ?? false
                    if existed { changes.append(.remove(ns: ns, key: key, rev: rev, expired: false)) }
                    exists[ns + "\u{0}" + key] = false
                    results.append(.del(deleted: existed))
                }
            }
            try commit(&s, .batch(rev: rev, changes))
            return (rev, results)
        }
    }

    // MARK: checks

    func checkKey(_ key: String) throws(WireError) {
        try Validate.identifier(key, field: "key", max: limits.maxKeyBytes)
    }

    func checkValue(_ value: [UInt8]) throws(WireError) {
        guard value.count <= limits.maxValueBytes else {
            throw .limit("max_value_bytes", max: limits.maxValueBytes,
                         "value of \(value.count) bytes exceeds \(limits.maxValueBytes)")
        }
    }

    func checkTTL(_ ttl: Int64) throws(WireError) {
        guard ttl >= 1, ttl <= limits.maxTTLms else {
            throw .invalidParams("ttl_ms", "must be between 1 and \(limits.maxTTLms)")
        }
    }

    /// Checks that `adding` bytes (while `freeing` go) fit `max_working_bytes` and, for a
    /// write by `principal`, its `working_bytes` quota (of which `freeingOwn` it wrote).
    /// An import (`principal` nil) is held to the shared limit only.
    func reserve(_ s: inout WorkingState, adding: Int, freeing: Int, by principal: String?, freeingOwn: Int = 0) throws(WireError) {
        guard s.bytes - freeing + adding <= limits.maxWorkingBytes else {
            throw .limit("max_working_bytes", max: limits.maxWorkingBytes,
                         "working memory is full (\(s.bytes) of \(limits.maxWorkingBytes) bytes used)")
        }
        if let principal, let max = quotas.limit(principal, \.workingBytes) {
            let own = s.byPrincipal[principal] ?? 0
            guard own - freeingOwn + adding <= max else {
                throw Quota.exceeded("working_bytes", max: max, principal: principal, "\(own) bytes of working memory are its, \(adding) more asked")
            }
        }
    }

    static func conflict(_ ns: String, _ key: String, current: Int64?, index: Int? = nil) -> WireError {
        var data: [JSONMember] = []
        if let index { data.append(JSONMember("index", .int(index))) }
        data += [JSONMember("ns", .string(ns)), JSONMember("key", .string(key)),
                 JSONMember("version", current.map { .int($0) } ?? .null)]
        return .app(.conflict, "version check failed for \(ns)/\(key)", data)
    }
}

/// Index of the first key not ordered before `target` (byte order).
private func lowerBound(_ keys: [String], _ target: String) -> Int {
    var lo = 0
    var hi = keys.count
    while lo < hi {
        let mid = (lo + hi) / 2
        if keys[mid].utf8.lexicographicallyPrecedes(target.utf8) { lo = mid + 1 } else { hi = mid }
    }
    return lo
}
