import Foundation

/// The vectors of one namespace: `{dims, metric, model}` and a contiguous row-major
/// float32 matrix searched exactly with BLAS, with each row's record beside it.
///
/// Concurrency: searches hold the read lock for their scan, writes the write lock for the
/// few microseconds of a row append; a search therefore never sees a half-written vector.
/// Replacing or deleting a record tombstones its row; ``compact()`` drops tombstones.
public final class VectorCollection: @unchecked Sendable {  // @unchecked: every var below is guarded by `lock`
    /// The namespace.
    public let ns: String
    /// Vector length.
    public let dims: Int
    /// How vectors are compared.
    public let metric: Metric
    /// The embedding model (`client` when clients send vectors).
    public let model: String
    let lock = RWLock()

    private var matrix: UnsafeMutablePointer<Float>
    private var capacity: Int
    /// Rows used (live and tombstoned).
    private var rows = 0
    /// Squared norms (for l2).
    private var norms2: [Float] = []
    /// Row -> record; nil for a tombstone.
    private var records: [SemanticRecord?] = []
    /// Row -> flags (`dead`, `superseded`), the only thing the unfiltered scan reads.
    private var flags: [UInt8] = []
    private var rowByID: [String: Int] = [:]
    private var deadRows = 0

    static let dead: UInt8 = 1
    static let superseded: UInt8 = 2
    /// Scores held at once (rows per BLAS call x queries): 4 MiB of scratch. One query
    /// scans up to a million rows per call (fewer calls, less BLAS thread start-up); 64
    /// queries scan 16384 rows per sgemm, which keeps the block in cache across queries.
    let scratchFloats: Int
    /// The matrix is allocated and scanned in whole groups of this many rows.
    static let rowAlign = 16

    /// An empty collection with room for `initialRows` rows (rounded up to ``rowAlign``)
    /// before it first grows.
    public init(ns: String, dims: Int, metric: Metric, model: String, scratchFloats: Int = 1 << 20, initialRows: Int = 64) {
        self.scratchFloats = scratchFloats
        self.ns = ns
        self.dims = dims
        self.metric = metric
        self.model = model
        capacity = max(1, (initialRows + Self.rowAlign - 1) / Self.rowAlign) * Self.rowAlign
        matrix = Self.zeroed(capacity * dims)
    }

    deinit { free(matrix) }

    /// Zero-filled floats from calloc: a large block comes straight from the kernel, so
    /// spare capacity costs address space, not memory, until rows are written into it.
    private static func zeroed(_ count: Int) -> UnsafeMutablePointer<Float> {
        guard let raw = calloc(count, MemoryLayout<Float>.stride) else {
            fatalError("out of memory for a \(count)-float vector matrix")
        }
        return raw.bindMemory(to: Float.self, capacity: count)
    }

    /// Live records.
    public var count: Int { lock.read { rowByID.count } }

    /// Bytes held by the matrix (allocated rows).
    public var matrixBytes: Int { lock.read { capacity * dims * 4 } }

    /// The record with `id`, if stored (expired or not).
    public func get(_ id: String) -> SemanticRecord? {
        lock.read { rowByID[id].flatMap { records[$0] } }
    }

    /// Stores `record` with its vector (already prepared for the metric), replacing a
    /// record with the same id: one row copied into the matrix, which grows by half its
    /// size when full (so the rows already there are copied O(1) times per row, amortised).
    /// - Complexity: O(dims) amortised.
    public func put(_ record: SemanticRecord, prepared vector: [Float]) {
        precondition(vector.count == dims, "vector length checked by the store")
        lock.write {
            if let old = rowByID[record.id] { tombstone(old) }
            rowByID[record.id] = append(record, vector)
        }
    }

    /// Adds a row that no id reaches (``get(_:)`` and ``put(_:prepared:)`` do not see it):
    /// the past versions of records that an `as_of` or `include_history` search ranks in a
    /// scratch collection, several of one id.
    /// - Complexity: O(dims) amortised.
    func putVersion(_ record: SemanticRecord, prepared vector: [Float]) {
        precondition(vector.count == dims, "vector length checked by the store")
        lock.write { _ = append(record, vector) }
    }

    /// Appends a row (under the write lock); its index.
    private func append(_ record: SemanticRecord, _ vector: [Float]) -> Int {
        if rows == capacity { grow() }
        if rows % Self.rowAlign == 0 {
            // A new group: BLAS reads all its rows, the ones not written yet as zeros.
            (matrix + rows * dims).update(repeating: 0, count: min(Self.rowAlign, capacity - rows) * dims)
        }
        var n2: Float = 0
        vector.withUnsafeBufferPointer { v in
            if let base = v.baseAddress { (matrix + rows * dims).update(from: base, count: dims) }
            for x in v { n2 += x * x }
        }
        norms2.append(n2)
        records.append(record)
        flags.append(record.supersededBy == nil ? 0 : Self.superseded)
        rows += 1
        return rows - 1
    }

    /// Replaces the record's metadata (not its vector), e.g. to mark it superseded.
    public func update(_ id: String, _ change: (inout SemanticRecord) -> Void) {
        lock.write {
            guard let row = rowByID[id], var r = records[row] else { return }
            change(&r)
            records[row] = r
            flags[row] = (flags[row] & Self.dead) | (r.supersededBy == nil ? 0 : Self.superseded)
        }
    }

    /// Removes a record; whether it was there.
    @discardableResult
    public func remove(_ id: String) -> Bool {
        lock.write {
            guard let row = rowByID[id] else { return false }
            tombstone(row)
            return true
        }
    }

    /// Live records past their TTL at `now`.
    public func expired(at now: Int64) -> [String] {
        lock.read { rowByID.compactMap { id, row in records[row]?.isExpired(at: now) == true ? id : nil } }
    }

    /// Whether tombstones make up enough of the matrix to be worth a compaction.
    public var needsCompaction: Bool { lock.read { deadRows > 1024 && deadRows * 4 > rows } }

    /// Drops tombstoned rows, moving live rows down (blocks searches for one pass over the matrix).
    /// - Complexity: O(rows x dims).
    public func compact() {
        lock.write {
            var out = 0
            for row in 0..<rows where flags[row] & Self.dead == 0 {
                if out != row {
                    (matrix + out * dims).update(from: matrix + row * dims, count: dims)
                    norms2[out] = norms2[row]
                    records[out] = records[row]
                    flags[out] = flags[row]
                    if let id = records[out]?.id, rowByID[id] == row { rowByID[id] = out }
                }
                out += 1
            }
            (matrix + out * dims).update(repeating: 0, count: (rows - out) * dims)
            norms2.removeSubrange(out...)
            records.removeSubrange(out...)
            flags.removeSubrange(out...)
            rows = out
            deadRows = 0
        }
    }

    private func tombstone(_ row: Int) {
        if let id = records[row]?.id, rowByID[id] == row { rowByID[id] = nil }
        records[row] = nil
        flags[row] = Self.dead
        deadRows += 1
    }

    /// Grows the matrix by half (at least 1024 rows) with `realloc`, which moves a large
    /// block by remapping its pages rather than copying the rows.
    /// - Complexity: O(new rows x dims) amortised.
    private func grow() {
        let newCapacity = (capacity + max(1024, capacity / 2)) / Self.rowAlign * Self.rowAlign
        guard let raw = realloc(matrix, newCapacity * dims * MemoryLayout<Float>.stride) else {
            fatalError("out of memory for a \(newCapacity)-row vector matrix")
        }
        // The new rows are not zeroed here (which would commit their memory now): `put`
        // zeroes each group of `rowAlign` rows as it starts writing into it.
        matrix = raw.bindMemory(to: Float.self, capacity: newCapacity * dims)
        capacity = newCapacity
    }

    // MARK: search

    /// Scores every row against `queries` (prepared for the metric, each `dims` long) with
    /// one BLAS call per block of rows (sgemv for one query, sgemm for several), and
    /// offers the rows that pass `filter` to each query's top-k (shared across collections).
    /// Rows are ranked by index in a top-k of this collection first, and only its winners'
    /// records are copied into `tops` (a record is a dozen references: copying one per
    /// candidate was most of a small search's time).
    /// - Complexity: O(rows x dims x queries) in BLAS, plus O(rows x queries) selection.
    func search(_ queries: [[Float]], filter: SearchFilter, now: Int64, into tops: inout [TopK<SemanticRecord>]) {
        let m = queries.count
        var flat = [Float]()
        flat.reserveCapacity(m * dims)
        var qNorms2 = [Float]()
        for q in queries {
            flat.append(contentsOf: q)
            qNorms2.append(q.reduce(0) { $0 + $1 * $1 })
        }
        let minScore = filter.minScore ?? -.infinity
        let metric = self.metric
        lock.read {
            guard rows > 0 else { return }
            // Ties within one collection (one namespace) rank by id, as in `tops`.
            var local = tops.map { top in TopK<Int>(k: top.k) { a, b in self.records[a]!.id < self.records[b]!.id } }
            let block = min(max(Self.rowAlign, scratchFloats / m / Self.rowAlign * Self.rowAlign), rows)
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: (block + Self.rowAlign) * m)
            defer { scratch.deallocate() }
            let hidden: UInt8 = filter.keepsSuperseded ? Self.dead : Self.dead | Self.superseded
            flat.withUnsafeBufferPointer { qs in
                guard let q = qs.baseAddress else { return }
                var start = 0
                while start < rows {
                    let n = min(block, rows - start)
                    // Whole groups of `rowAlign` rows go to BLAS (the padding rows are zero
                    // and never read back), so every row takes the kernel's main path: a
                    // row's score does not depend on where it sits in the matrix, and a
                    // restart (which packs rows anew) gives bit-identical scores.
                    let padded = min(capacity - start, (n + Self.rowAlign - 1) / Self.rowAlign * Self.rowAlign)
                    if m == 1 {
                        BLAS.scores(matrix + start * dims, rows: padded, dims: dims, query: q, into: scratch)
                    } else {
                        BLAS.scores(matrix + start * dims, rows: padded, dims: dims, queries: q, m: m, into: scratch, ldc: padded)
                    }
                    flags.withUnsafeBufferPointer { fl in
                        norms2.withUnsafeBufferPointer { n2 in
                            for j in 0..<m {
                                let s = scratch + j * padded
                                let qn2 = qNorms2[j]
                                // The score to reach; most rows fail this one comparison.
                                let globalBar = max(tops[j].threshold, minScore)
                                var bar = max(local[j].threshold, globalBar)
                                for i in 0..<n {
                                    let row = start + i
                                    if fl[row] & hidden != 0 { continue }
                                    let score: Float
                                    switch metric {
                                    case .dot: score = s[i]
                                    // Unit vectors: rounding can push a dot product a hair past 1.
                                    case .cosine: score = min(1, max(-1, s[i]))
                                    case .l2: score = -max(0, n2[row] - 2 * s[i] + qn2).squareRoot()
                                    }
                                    if score < bar { continue }
                                    guard records[row] != nil, !records[row]!.isExpired(at: now),
                                          filter.keeps(records[row]!, now: now)
                                    else { continue }
                                    local[j].offer(score, row)
                                    bar = max(local[j].threshold, globalBar)
                                }
                            }
                        }
                    }
                    start += n
                }
            }
            for j in 0..<m {
                for (score, row) in local[j].heap { tops[j].offer(score, records[row]!) }
            }
        }
    }
}
