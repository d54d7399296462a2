import MnemoProtocol

/// The state behind the working-memory lock: namespaces, the global revision and expiry
/// bookkeeping. Every method runs with the lock held, so each operation is atomic and the
/// store is linearizable.
struct WorkingState {
    var spaces: [String: WorkingSpace] = [:]
    var rev: Int64 = 0
    var keyCount = 0
    var bytes = 0
    var withTTL = 0
    var expiry = ExpiryQueue()
    var expiredTotal = 0

    // MARK: lookup

    /// The live item at `ns/key`; an expired one is removed first (it takes a revision
    /// like any deletion).
    mutating func live(_ ns: String, _ key: String, now: Int64) -> WorkingItem? {
        guard let item = spaces[ns]?.items[key] else { return nil }
        if item.isLive(at: now) { return item }
        remove(ns, key)
        rev += 1
        expiredTotal += 1
        return nil
    }

    // MARK: mutation primitives (callers take care of `rev`)

    mutating func put(_ ns: String, _ key: String, _ item: WorkingItem, replacing old: WorkingItem?) {
        if let old {
            bytes -= WorkingItem.cost(key: key, valueBytes: old.value.count)
            if old.expiresAt != 0 { withTTL -= 1 }
        } else {
            keyCount += 1
        }
        bytes += WorkingItem.cost(key: key, valueBytes: item.value.count)
        if item.expiresAt != 0 {
            withTTL += 1
            expiry.insert(.init(expiresAt: item.expiresAt, ns: ns, key: key, version: item.version))
            compactExpiryIfNeeded()
        }
        if old == nil {
            spaces[ns, default: WorkingSpace()].items[key] = item
            spaces[ns]?.sortedKeys = nil
        } else {
            spaces[ns]?.items[key] = item
        }
    }

    @discardableResult
    mutating func remove(_ ns: String, _ key: String) -> WorkingItem? {
        guard let old = spaces[ns]?.items.removeValue(forKey: key) else { return nil }
        keyCount -= 1
        bytes -= WorkingItem.cost(key: key, valueBytes: old.value.count)
        if old.expiresAt != 0 { withTTL -= 1 }
        if spaces[ns]?.items.isEmpty == true {
            spaces[ns] = nil
        } else {
            spaces[ns]?.sortedKeys = nil
        }
        return old
    }

    mutating func removeSpace(_ ns: String) -> Int {
        guard let space = spaces.removeValue(forKey: ns) else { return 0 }
        for (key, item) in space.items {
            keyCount -= 1
            bytes -= WorkingItem.cost(key: key, valueBytes: item.value.count)
            if item.expiresAt != 0 { withTTL -= 1 }
        }
        return space.items.count
    }

    // MARK: expiry

    /// Removes up to `max` expired keys, earliest first.
    /// - Returns: how many were removed and whether more are due.
    /// - Complexity: O(max · log n).
    mutating func sweep(now: Int64, max: Int) -> (removed: Int, more: Bool) {
        var removed = 0
        while removed < max, let e = expiry.popDue(now: now) {
            // Skip entries whose key was deleted, rewritten or re-timed since.
            guard let item = spaces[e.ns]?.items[e.key], item.version == e.version, item.expiresAt == e.expiresAt
            else { continue }
            remove(e.ns, e.key)
            rev += 1
            expiredTotal += 1
            removed += 1
        }
        return (removed, expiry.heap.min.map { $0.expiresAt <= now } ?? false)
    }

    private mutating func compactExpiryIfNeeded() {
        guard expiry.needsRebuild(liveWithTTL: withTTL) else { return }
        var entries: [ExpiryQueue.Entry] = []
        entries.reserveCapacity(withTTL)
        for (ns, space) in spaces {
            for (key, item) in space.items where item.expiresAt != 0 {
                entries.append(.init(expiresAt: item.expiresAt, ns: ns, key: key, version: item.version))
            }
        }
        expiry.rebuild(entries)
    }
}
