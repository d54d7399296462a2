/// The `k` best-scoring items of a stream, in O(n log k) without sorting everything: a
/// min-heap of the current best whose root is the score to beat, so most candidates are
/// rejected by one comparison with ``threshold`` before anything else is looked at.
/// Ties are broken by `before` (e.g. by record id), so a result does not depend on the
/// order rows happen to be stored in (identical results across restarts).
struct TopK<Item> {
    private(set) var heap: [(score: Float, item: Item)] = []
    let k: Int
    private let before: (Item, Item) -> Bool

    init(k: Int, before: @escaping (Item, Item) -> Bool) {
        self.k = k
        self.before = before
        heap.reserveCapacity(k)
    }

    /// The score a candidate must reach to be considered (-inf while not full).
    @inline(__always) var threshold: Float { heap.count < k ? -Float.infinity : heap[0].score }

    /// Offers a candidate.
    mutating func offer(_ score: Float, _ item: Item) {
        if heap.count < k {
            heap.append((score, item))
            siftUp(heap.count - 1)
        } else if worse(heap[0], (score, item)) {
            heap[0] = (score, item)
            siftDown(0)
        }
    }

    /// The items, best first.
    func sorted() -> [(score: Float, item: Item)] {
        heap.sorted { worse($1, $0) }
    }

    /// Whether `a` ranks below `b`.
    @inline(__always) private func worse(_ a: (score: Float, item: Item), _ b: (score: Float, item: Item)) -> Bool {
        a.score < b.score || (a.score == b.score && before(b.item, a.item))
    }

    private mutating func siftUp(_ i0: Int) {
        var i = i0
        while i > 0 {
            let p = (i - 1) / 2
            guard worse(heap[i], heap[p]) else { return }
            heap.swapAt(i, p)
            i = p
        }
    }

    private mutating func siftDown(_ i0: Int) {
        var i = i0
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < heap.count && worse(heap[l], heap[m]) { m = l }
            if r < heap.count && worse(heap[r], heap[m]) { m = r }
            if m == i { return }
            heap.swapAt(i, m)
            i = m
        }
    }
}

extension TopK where Item == SemanticRecord {
    /// A top-k of records, ties ranked by namespace then id.
    init(k: Int) {
        self.init(k: k) { a, b in (a.ns, a.id) < (b.ns, b.id) }
    }
}
