import Histogram
import Synchronization

/// Per-method call counts, error counts and latency histograms.
///
/// Each event loop records into its own shard, so the lock taken per request is never
/// contended by another loop; `admin.stats` merges the shards.
final class MethodStats: Sendable {
    struct Entry: Sendable {
        var count: UInt64 = 0
        var errors: UInt64 = 0
        // Nanoseconds, 1 us .. 60 s, two significant digits (about 1% resolution).
        var latency = Histogram<UInt32>(lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000_000,
                                        numberOfSignificantValueDigits: .two)
    }

    private final class Shard: Sendable {
        let entries: Mutex<[Entry]>
        init(count: Int) { entries = Mutex([Entry](repeating: Entry(), count: count)) }
    }

    /// Method names by index (the dispatcher's method table order).
    let names: [String]
    private let shards: [Shard]

    init(names: [String], shards: Int) {
        self.names = names
        self.shards = (0..<max(1, shards)).map { _ in Shard(count: names.count) }
    }

    /// Records one call of method number `method` on shard `shard` (no hashing: the
    /// dispatcher knows the index).
    func record(shard: Int, method: Int, nanos: UInt64, failed: Bool) {
        shards[shard % shards.count].entries.withLock { entries in
            entries[method].count += 1
            if failed { entries[method].errors += 1 }
            _ = entries[method].latency.record(max(1, min(nanos, 60_000_000_000)))
        }
    }

    /// All shards merged, for the methods called at least once.
    func snapshot() -> [(name: String, entry: Entry)] {
        var merged = [Entry](repeating: Entry(), count: names.count)
        for shard in shards {
            let entries = shard.entries.withLock { $0 }
            for (i, e) in entries.enumerated() where e.count > 0 {
                merged[i].count += e.count
                merged[i].errors += e.errors
                merged[i].latency.add(e.latency)
            }
        }
        return names.indices.filter { merged[$0].count > 0 }.map { (names[$0], merged[$0]) }
    }
}
