import HeapModule

/// Keys with a TTL, ordered by expiry time, so the background sweep removes exactly the
/// expired keys without scanning or sampling the whole map.
///
/// Entries are not removed when a key is deleted, rewritten or given a new TTL; instead
/// each entry remembers the version it was made for and is ignored on pop if the key has
/// moved on. Stale entries are bounded: the queue is rebuilt from the live keys when it
/// holds more than twice as many entries as there are keys with a TTL (amortized O(1)).
struct ExpiryQueue {
    struct Entry: Comparable {
        var expiresAt: Int64
        var ns: String
        var key: String
        var version: Int64
        static func < (a: Entry, b: Entry) -> Bool { a.expiresAt < b.expiresAt }
        static func == (a: Entry, b: Entry) -> Bool { a.expiresAt == b.expiresAt }
    }

    private(set) var heap = Heap<Entry>()

    var count: Int { heap.count }

    /// - Complexity: O(log n).
    mutating func insert(_ e: Entry) { heap.insert(e) }

    /// The earliest entry if it expires at or before `now`, removed from the queue.
    /// - Complexity: O(log n).
    mutating func popDue(now: Int64) -> Entry? {
        guard let top = heap.min, top.expiresAt <= now else { return nil }
        return heap.popMin()
    }

    /// Whether stale entries have piled up past the bound, given the live TTL count.
    func needsRebuild(liveWithTTL: Int) -> Bool { heap.count > 2 * liveWithTTL + 1024 }

    /// Replaces the queue by exactly the given entries. - Complexity: O(n).
    mutating func rebuild(_ entries: [Entry]) { heap = Heap(entries) }
}
