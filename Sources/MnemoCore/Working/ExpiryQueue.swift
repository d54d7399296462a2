import HeapModule

/// Things with a deadline, ordered by it, so the background sweep removes exactly what is
/// due without scanning or sampling everything.
///
/// Entries are not removed when the thing is deleted, rewritten or re-timed; instead each
/// entry remembers what it was made for (version, deadline) and is ignored on pop if the
/// thing has moved on. Stale entries are bounded: the queue is rebuilt from the live
/// deadlines when it holds more than twice as many entries as there are (amortized O(1)).
struct ExpiryQueue: Sendable {
    /// What an entry is about.
    enum Tier: UInt8, Sendable { case key, result, inbox, claim, barrier, proposal }

    struct Entry: Comparable, Sendable {
        var expiresAt: Int64
        var ns: String
        /// Key, idempotency key, inbox id or claim resource.
        var key: String
        /// Key version, claim token, barrier generation or proposal round it was made for (0
        /// where the deadline alone decides).
        var version: Int64
        var tier: Tier = .key
        static func < (a: Entry, b: Entry) -> Bool { a.expiresAt < b.expiresAt }
        static func == (a: Entry, b: Entry) -> Bool { a.expiresAt == b.expiresAt }
    }

    private var heap = Heap<Entry>()

    /// - Complexity: O(log n).
    mutating func insert(_ e: Entry) { heap.insert(e) }

    /// The earliest entry if it is due at or before `now`, removed from the queue.
    /// - Complexity: O(log n).
    mutating func popDue(now: Int64) -> Entry? {
        guard let top = heap.min, top.expiresAt <= now else { return nil }
        return heap.popMin()
    }

    /// Whether anything is due at `now`.
    func hasDue(now: Int64) -> Bool { heap.min.map { $0.expiresAt <= now } ?? false }

    /// Whether stale entries have piled up past the bound, given the live count.
    func needsRebuild(live: Int) -> Bool { heap.count > 2 * live + 1024 }

    /// Replaces the queue by exactly the given entries. - Complexity: O(n).
    mutating func rebuild(_ entries: [Entry]) { heap = Heap(entries) }
}
