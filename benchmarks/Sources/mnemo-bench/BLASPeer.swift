import CBLASBench
import Foundation

/// Exact top-k over unit vectors in-process: `X @ q` with the system's BLAS (`sgemv`,
/// the call numpy's `X @ q` makes) and a partial selection of the k best, which is what
/// `np.argpartition` + a sort of the k does. The recall step of the agent-step peer.
final class BruteForceIndex: @unchecked Sendable {
    // @unchecked: `vectors` is written once in init and only read afterwards; each
    // caller brings its own score buffer.
    let vectors: [Float]
    let count: Int
    let dims: Int

    /// Reads `count` x `dims` little-endian float32 values from `path`.
    init(path: String, dims: Int) throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        guard data.count % (dims * 4) == 0 else { throw BenchError("\(path): not a multiple of \(dims) floats") }
        count = data.count / (dims * 4)
        self.dims = dims
        vectors = data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }

    /// Indices of the `k` highest dot products with `q`, best first. `scores` is the
    /// caller's buffer (resized to the row count).
    func search(_ q: [Float], k: Int, scores: inout [Float]) -> [Int] {
        if scores.count != count { scores = [Float](repeating: 0, count: count) }
        vectors.withUnsafeBufferPointer { x in
            q.withUnsafeBufferPointer { qp in
                scores.withUnsafeMutableBufferPointer { s in
                    cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(count), Int32(dims), 1, x.baseAddress, Int32(dims),
                                qp.baseAddress, 1, 0, s.baseAddress, 1)
                }
            }
        }
        // The k best so far, worst first: most rows are rejected by one comparison.
        var best: [(Float, Int)] = []
        best.reserveCapacity(k + 1)
        for i in 0..<count {
            let s = scores[i]
            if best.count == k && s <= best[0].0 { continue }
            var j = best.count
            best.append((s, i))
            while j > 0 && best[j - 1].0 > s { best[j] = best[j - 1]; j -= 1 }
            best[j] = (s, i)
            if best.count > k { best.removeFirst() }
        }
        return best.reversed().map(\.1)
    }
}
