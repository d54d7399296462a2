import MnemoProtocol
import Synchronization

/// Working memory: a TTL-scoped hash map of JSON values in namespaces, with per-key
/// versions, compare-and-set and multi-key transactions.
///
/// One lock guards the whole map: each operation is a short critical section run on the
/// caller's thread (no hop to another executor), which makes every operation linearizable
/// and keeps `wm.get` close to the cost of a hash lookup.
public final class WorkingMemory: Sendable {
    private let state = Mutex(WorkingState())
    private let limits: Limits
    private let time: any TimeSource

    /// An empty store.
    public init(limits: Limits, time: any TimeSource) {
        self.limits = limits
        self.time = time
    }

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
        /// Client-supplied task link, kept in provenance.
        public var task: String?
        /// Client-supplied derivation links, kept in provenance.
        public var derivedFrom: [String]?

        /// A write.
        public init(ns: String, key: String, value: [UInt8], ttlMs: Int64? = nil, ifVersion: Int64? = nil,
                    ifAbsent: Bool = false, task: String? = nil, derivedFrom: [String]? = nil) {
            self.ns = ns
            self.key = key
            self.value = value
            self.ttlMs = ttlMs
            self.ifVersion = ifVersion
            self.ifAbsent = ifAbsent
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
    /// - Throws: `CONFLICT` (with the current version) when a guard fails,
    ///   `LIMIT_EXCEEDED` when the value or the store budget is exceeded, -32602 for a bad
    ///   key or TTL. Nothing is applied on error.
    /// - Complexity: O(1) amortized (O(log n) with a TTL).
    public func set(_ w: Write, by caller: Caller) throws(WireError) -> WriteResult {
        try checkKey(w.key)
        try checkValue(w.value)
        if let ttl = w.ttlMs { try checkTTL(ttl) }
        if w.ifAbsent && w.ifVersion != nil {
            throw .invalidParams("if_absent", "cannot be combined with if_version")
        }
        let now = time.nowMs()
        return try state.withLock { s throws(WireError) in
            let old = s.live(w.ns, w.key, now: now)
            if w.ifAbsent, let old { throw Self.conflict(w.ns, w.key, current: old.version) }
            if let expected = w.ifVersion, old?.version != expected {
                throw Self.conflict(w.ns, w.key, current: old?.version)
            }
            try reserve(&s, adding: WorkingItem.cost(key: w.key, valueBytes: w.value.count),
                        freeing: old.map { WorkingItem.cost(key: w.key, valueBytes: $0.value.count) } ?? 0)
            s.rev += 1
            let expiresAt = w.ttlMs.map { now + $0 } ?? 0
            let item = WorkingItem(
                value: w.value, version: s.rev, expiresAt: expiresAt,
                provenance: Provenance(caller: caller, at: now, rev: s.rev, task: w.task, derivedFrom: w.derivedFrom))
            s.put(w.ns, w.key, item, replacing: old)
            return WriteResult(version: s.rev, rev: s.rev, expiresAt: expiresAt == 0 ? nil : expiresAt)
        }
    }

    /// The live item at `ns/key`, or nil. An expired key is never returned.
    /// - Complexity: O(1).
    public func get(ns: String, key: String) -> WorkingItem? {
        let now = time.nowMs()
        return state.withLock { $0.live(ns, key, now: now) }
    }

    /// Deletes a key.
    /// - Returns: the revision of the deletion, or nil if there was no live key.
    /// - Throws: `CONFLICT` when `ifVersion` does not match (also when the key is absent).
    /// - Complexity: O(1).
    public func delete(ns: String, key: String, ifVersion: Int64? = nil, by caller: Caller) throws(WireError) -> Int64? {
        try checkKey(key)
        let now = time.nowMs()
        return try state.withLock { s throws(WireError) in
            let old = s.live(ns, key, now: now)
            if let expected = ifVersion, old?.version != expected {
                throw Self.conflict(ns, key, current: old?.version)
            }
            guard old != nil else { return nil }
            s.remove(ns, key)
            s.rev += 1
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
    /// - Returns: up to `limit` items and a cursor when more may follow.
    /// - Complexity: O(log n + limit), plus O(n log n) once after keys were added or removed.
    public func list(ns: String, prefix: String?, limit: Int, cursor: String?) -> (items: [Listed], cursor: String?) {
        let now = time.nowMs()
        return state.withLock { s in
            guard var space = s.spaces[ns] else { return ([], nil) }
            s.spaces[ns] = nil  // avoid a copy while the sorted cache is filled in
            let keys = space.orderedKeys()
            var start = lowerBound(keys, prefix ?? "")
            if let cursor {
                let afterCursor = lowerBound(keys, cursor)
                start = Swift.max(start, afterCursor < keys.count && keys[afterCursor] == cursor ? afterCursor + 1 : afterCursor)
            }
            var out: [Listed] = []
            var i = start
            while i < keys.count, out.count < limit {
                let key = keys[i]
                if let prefix, !key.utf8.starts(with: prefix.utf8) { break }
                if let item = space.items[key], item.isLive(at: now) {
                    out.append(Listed(key: key, version: item.version, expiresAt: item.expiresAt == 0 ? nil : item.expiresAt))
                }
                i += 1
            }
            // A cursor only when another live key of the range follows.
            var more = false
            while i < keys.count, out.count == limit {
                if let prefix, !keys[i].utf8.starts(with: prefix.utf8) { break }
                if space.items[keys[i]]?.isLive(at: now) == true {
                    more = true
                    break
                }
                i += 1
            }
            s.spaces[ns] = space
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
        return state.withLock { s in
            guard var item = s.live(ns, key, now: now) else { return nil }
            s.rev += 1
            item.version = s.rev
            item.expiresAt = ttlMs.map { now + $0 } ?? 0
            item.provenance = Provenance(caller: caller, at: now, rev: s.rev, task: item.provenance.task,
                                         derivedFrom: item.provenance.derivedFrom)
            let old = s.remove(ns, key)
            s.put(ns, key, item, replacing: nil)
            _ = old
            return WriteResult(version: s.rev, rev: s.rev, expiresAt: item.expiresAt == 0 ? nil : item.expiresAt)
        }
    }

    /// Drops every key of exactly this namespace (not of its sub-namespaces).
    /// - Returns: how many live keys were dropped and the revision taken (nil if none).
    /// - Complexity: O(keys in the namespace).
    public func clear(ns: String, by caller: Caller) -> (deleted: Int, rev: Int64?) {
        let now = time.nowMs()
        return state.withLock { s in
            let live = s.spaces[ns]?.items.values.reduce(0) { $0 + ($1.isLive(at: now) ? 1 : 0) } ?? 0
            _ = s.removeSpace(ns)
            guard live > 0 else { return (0, nil) }
            s.rev += 1
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
        return try state.withLock { s throws(WireError) in
            for (index, c) in compare.enumerated() {
                switch c {
                case .version(let ns, let key, let expected):
                    let current = s.live(ns, key, now: now)?.version
                    if current != expected { throw Self.conflict(ns, key, current: current, index: index) }
                case .absent(let ns, let key):
                    if let current = s.live(ns, key, now: now)?.version {
                        throw Self.conflict(ns, key, current: current, index: index)
                    }
                }
            }
            // Budget check against the worst case (no bytes freed), so nothing is applied
            // half way.
            try reserve(&s, adding: added, freeing: 0)
            s.rev += 1
            let rev = s.rev
            var results: [OpResult] = []
            results.reserveCapacity(ops.count)
            for op in ops {
                switch op {
                case .set(let ns, let key, let value, let ttl):
                    let old = s.live(ns, key, now: now)
                    let expiresAt = ttl.map { now + $0 } ?? 0
                    s.put(ns, key, WorkingItem(value: value, version: rev, expiresAt: expiresAt,
                                               provenance: Provenance(caller: caller, at: now, rev: rev)),
                          replacing: old)
                    results.append(.set(version: rev, expiresAt: expiresAt == 0 ? nil : expiresAt))
                case .del(let ns, let key):
                    let existed = s.live(ns, key, now: now) != nil
                    if existed { s.remove(ns, key) }
                    results.append(.del(deleted: existed))
                }
            }
            return (rev, results)
        }
    }

    /// Removes up to `max` expired keys (the background sweep's unit of work).
    /// - Returns: how many were removed and whether more are already due.
    public func sweepExpired(max: Int) -> (removed: Int, more: Bool) {
        let now = time.nowMs()
        return state.withLock { $0.sweep(now: now, max: max) }
    }

    /// The current global revision.
    public var revision: Int64 { state.withLock { $0.rev } }

    /// Sizes for `admin.stats`.
    public struct Stats: Sendable {
        /// Keys held (expired ones not yet swept included).
        public var keys: Int
        /// Namespaces with at least one key.
        public var namespaces: Int
        /// Bytes charged against the budget.
        public var bytes: Int
        /// Keys removed by expiry so far.
        public var expired: Int
    }

    /// Current sizes.
    public var stats: Stats {
        state.withLock { Stats(keys: $0.keyCount, namespaces: $0.spaces.count, bytes: $0.bytes, expired: $0.expiredTotal) }
    }

    // MARK: checks

    private func checkKey(_ key: String) throws(WireError) {
        try Validate.identifier(key, field: "key", max: limits.maxKeyBytes)
    }

    private func checkValue(_ value: [UInt8]) throws(WireError) {
        guard value.count <= limits.maxValueBytes else {
            throw .limit("max_value_bytes", max: limits.maxValueBytes,
                         "value of \(value.count) bytes exceeds \(limits.maxValueBytes)")
        }
    }

    private func checkTTL(_ ttl: Int64) throws(WireError) {
        guard ttl >= 1, ttl <= limits.maxTTLms else {
            throw .invalidParams("ttl_ms", "must be between 1 and \(limits.maxTTLms)")
        }
    }

    private func reserve(_ s: inout WorkingState, adding: Int, freeing: Int) throws(WireError) {
        guard s.bytes - freeing + adding <= limits.maxWorkingBytes else {
            throw .limit("max_working_bytes", max: limits.maxWorkingBytes,
                         "working memory is full (\(s.bytes) of \(limits.maxWorkingBytes) bytes used)")
        }
    }

    private static func conflict(_ ns: String, _ key: String, current: Int64?, index: Int? = nil) -> WireError {
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
