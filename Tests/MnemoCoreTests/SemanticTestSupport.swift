import Foundation
import Logging
import MnemoCore
import MnemoProtocol
import Synchronization
import Testing

/// A semantic store in a fresh temporary directory (or in memory), on a manual clock,
/// with its own revision counter.
final class SemanticFixture: Sendable {
    let dir: String
    let time: ManualTime
    let revisions: RevisionCounter
    let store: SemanticStore

    init(volatile: Bool = false, limits: Limits = Limits(), settings: SemanticSettings = SemanticSettings(),
         dir: String? = nil, time: ManualTime = ManualTime(), startRev: Int64 = 0) throws {
        self.dir = dir ?? FileManager.default.temporaryDirectory.appendingPathComponent("mnemo-sem-\(UUID().uuidString)").path
        self.time = time
        let revisions = RevisionCounter(startRev)
        self.revisions = revisions
        store = try SemanticStore(dir: self.dir, durability: volatile ? .volatile : .normal, limits: limits, time: time,
                                  embedder: settings.embedder, defaultMetric: settings.metric,
                                  similarScore: settings.similarScore, defaultMode: settings.defaultMode, logger: Logger(label: "test"),
                                  nextRevision: { () throws(WireError) in revisions.next() })
    }

    /// The same directory opened again (after `close()`), revisions continuing.
    func reopen(settings: SemanticSettings = SemanticSettings()) throws -> SemanticFixture {
        store.close()
        return try SemanticFixture(settings: settings, dir: dir, time: time, startRev: revisions.value)
    }

    deinit {
        store.close()
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// Upserts a record with an explicit vector.
    @discardableResult
    func put(_ ns: String, _ id: String?, _ vector: [Float], text: String = "fact", tags: [String] = [],
             supersedes: String? = nil, ttlMs: Int64? = nil, dedupe: SemanticStore.Dedupe = .none, by caller: Caller = alice) throws -> SemanticStore.UpsertResult {
        var u = SemanticStore.Upsert(ns: ns, text: text)
        u.id = id
        u.vector = vector
        u.tags = tags
        u.supersedes = supersedes
        u.ttlMs = ttlMs
        u.dedupe = dedupe
        return try store.upsert(u, by: caller)
    }

    /// Search ids, best first.
    func ids(_ prefix: String, _ vector: [Float], k: Int = 10, filter: SearchFilter = SearchFilter()) throws -> [String] {
        try store.search(SemanticStore.Query(prefix: prefix, vector: vector, text: nil, k: k, filter: filter)).hits.map(\.record.id)
    }
}

/// A revision counter.
final class RevisionCounter: Sendable {
    private let atomic: Atomic<Int64>
    init(_ start: Int64) { atomic = Atomic(start) }
    func next() -> Int64 { atomic.add(1, ordering: .relaxed).newValue }
    var value: Int64 { atomic.load(ordering: .relaxed) }
}

/// Deterministic pseudo-random vectors (xorshift), so failures reproduce.
struct VectorGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed | 1 }

    mutating func next() -> Float {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return Float(state >> 40) / Float(1 << 24) * 2 - 1
    }

    mutating func vector(_ dims: Int) -> [Float] { (0..<dims).map { _ in next() } }
}

/// Brute-force reference in Double: ids of the k best under `metric`, ties by id.
func referenceTopK(_ rows: [(id: String, v: [Float])], _ q: [Float], k: Int, metric: Metric) -> [String] {
    func norm(_ v: [Float]) -> Double { v.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot() }
    let scored = rows.map { row -> (String, Double) in
        let dot = zip(row.v, q).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        switch metric {
        case .dot: return (row.id, dot)
        case .cosine: return (row.id, dot / (norm(row.v) * norm(q)))
        case .l2: return (row.id, -zip(row.v, q).reduce(0.0) { $0 + pow(Double($1.0) - Double($1.1), 2) }.squareRoot())
        }
    }
    return scored.sorted { $0.1 > $1.1 || ($0.1 == $1.1 && $0.0 < $1.0) }.prefix(k).map(\.0)
}
