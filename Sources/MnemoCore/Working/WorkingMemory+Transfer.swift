import MnemoProtocol

extension WorkingMemory {
    /// One key as exported.
    public struct ExportedKey: Sendable {
        /// Namespace.
        public var ns: String
        /// Key.
        public var key: String
        /// The stored item (value, version, expiry, provenance).
        public var item: WorkingItem
    }

    /// The live keys under `prefix` (nil: all), sorted by namespace then key, and the
    /// revision they are consistent at (both taken under the store lock). Keys tied to a
    /// claim's lease are left out: they end with the claim, which is not exported.
    /// - Complexity: O(n log n) for the n keys of the store.
    public func exportKeys(under prefix: String?) -> (rev: Int64, keys: [ExportedKey]) {
        let now = time.nowMs()
        let (rev, spaces) = state.withLock { s in (s.rev, s.spaces) }  // copy-on-write capture
        var out: [ExportedKey] = []
        for ns in spaces.keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }) where Validate.covers(prefix, ns) {
            guard let space = spaces[ns] else { continue }
            for key in space.items.keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }) {
                guard let item = space.items[key], item.isLive(at: now), item.lease == nil else { continue }
                out.append(ExportedKey(ns: ns, key: key, item: item))
            }
        }
        return (rev, out)
    }

    /// The current state and revision, captured under the lock (for a snapshot).
    func captureState() -> WorkingState { state.withLock { $0 } }

    /// Whether a live key exists at `ns/key` (import planning; expired keys count as absent).
    public func hasLiveKey(ns: String, key: String) -> Bool {
        let now = time.nowMs()
        return state.withLock { s in
            guard let item = s.spaces[ns]?.items[key] else { return false }
            return item.isLive(at: now)
        }
    }

    /// Imports keys that do not exist yet, each with a new revision and its original
    /// value, expiry and provenance (the provenance's `rev` becomes the new one). Keys
    /// that exist are skipped. All or nothing: the budget is checked for the whole set
    /// before the first key is written.
    /// - Returns: how many were imported and skipped, and the last revision taken.
    /// - Throws: `LIMIT_EXCEEDED` when the keys do not fit `max_working_bytes`,
    ///   `UNAVAILABLE` when they cannot be journaled (keys before that one stay).
    /// - Complexity: O(k) for k keys, under the store lock.
    public func importKeys(_ keys: [ExportedKey]) throws(WireError) -> (imported: Int, skipped: Int, rev: Int64?) {
        let now = time.nowMs()
        return try write { s throws(WireError) in
            var fresh: [ExportedKey] = []
            var seen = Set<ClaimKey>()
            var cost = 0
            for k in keys {
                if let item = s.spaces[k.ns]?.items[k.key], item.isLive(at: now) { continue }
                guard seen.insert(ClaimKey(ns: k.ns, resource: k.key)).inserted else { continue }
                cost += WorkingItem.cost(key: k.key, valueBytes: k.item.value.count)
                fresh.append(k)
            }
            try reserve(&s, adding: cost, freeing: 0, by: nil)
            var last: Int64?
            for k in fresh {
                let rev = s.rev + 1
                var prov = k.item.provenance
                prov.rev = rev
                let item = WorkingItem(value: k.item.value, version: rev, expiresAt: k.item.expiresAt, provenance: prov)
                try commit(&s, .put(ns: k.ns, key: k.key, item: item))
                last = rev
            }
            return (fresh.count, keys.count - fresh.count, last)
        }
    }
}
