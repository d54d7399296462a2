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
        let table = Mutex<[String: Entry]>([:])
    }

    private let shards: [Shard]

    init(shards: Int) {
        self.shards = (0..<max(1, shards)).map { _ in Shard() }
    }

    /// Records one call of `method` on shard `shard`.
    func record(shard: Int, method: String, nanos: UInt64, failed: Bool) {
        shards[shard % shards.count].table.withLock { table in
            table[method, default: Entry()].count += 1
            if failed { table[method]?.errors += 1 }
            _ = table[method]?.latency.record(max(1, min(nanos, 60_000_000_000)))
        }
    }

    /// All shards merged.
    func snapshot() -> [String: Entry] {
        var merged: [String: Entry] = [:]
        for shard in shards {
            let table = shard.table.withLock { $0 }
            for (method, e) in table {
                var m = merged[method] ?? Entry()
                m.count += e.count
                m.errors += e.errors
                m.latency.add(e.latency)
                merged[method] = m
            }
        }
        return merged
    }
}
