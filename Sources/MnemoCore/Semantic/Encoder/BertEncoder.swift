import CBLAS
import Foundation

/// A BERT encoder's forward pass on the CPU, every matrix product a `cblas_sgemm`.
///
/// Sequences are packed, not padded: the per-token layers (embeddings, projections, layer
/// norms, feed-forward) run once over the tokens of all sequences stacked as one
/// `tokens x hidden` matrix, and only attention looks at sequence boundaries (one small
/// sgemm pair per sequence and head). A padded batch computes the same numbers (padding
/// gets zero attention weight through the mask) and wastes the work on padding.
///
/// The `baseAddress!` below are of buffers that are never empty: every sequence holds at
/// least `[CLS]` and `[SEP]`, and every weight has its configured, non-zero shape.
final class BertEncoder: Sendable {
    /// One encoder layer's weights, row-major `out x in` as PyTorch stores them; query,
    /// key and value stacked into one `3h x h` matrix (one sgemm for the three).
    struct Layer: Sendable {
        var qkv: [Float], qkvBias: [Float]
        var attnOut: [Float], attnOutBias: [Float]
        var norm1: [Float], norm1Bias: [Float]
        var up: [Float], upBias: [Float]
        var down: [Float], downBias: [Float]
        var norm2: [Float], norm2Bias: [Float]
    }

    let config: BertConfig
    let words: [Float]
    let positions: [Float]
    let tokenType: [Float]
    let embNorm: [Float], embNormBias: [Float]
    let layers: [Layer]

    /// Most tokens run through the network at once (bounds the scratch memory: about
    /// `maxChunkTokens x (5 x hidden + intermediate)` floats, 35 MB for MiniLM).
    static let maxChunkTokens = 4096

    /// Loads the weights of `config` from `file`, with or without the `bert.` prefix of
    /// the tensor names.
    /// - Throws: ``ModelError`` naming the file and tensor for a missing tensor or a
    ///   shape that differs from the configuration.
    init(config: BertConfig, file: SafeTensors) throws(ModelError) {
        self.config = config
        let h = config.hidden, f = config.intermediate
        let prefix = file.entries["bert.embeddings.word_embeddings.weight"] != nil ? "bert." : ""
        func t(_ name: String, _ shape: [Int]) throws(ModelError) -> [Float] {
            let full = prefix + name
            if file.entries[full] == nil, name.hasSuffix("LayerNorm.weight") || name.hasSuffix("LayerNorm.bias") {
                // Older checkpoints name the layer norm's parameters gamma and beta.
                let old = full.replacingOccurrences(of: "LayerNorm.weight", with: "LayerNorm.gamma")
                    .replacingOccurrences(of: "LayerNorm.bias", with: "LayerNorm.beta")
                if file.entries[old] != nil { return try file.floats(old, shape: shape) }
            }
            return try file.floats(full, shape: shape)
        }
        words = try t("embeddings.word_embeddings.weight", [config.vocabSize, h])
        positions = try t("embeddings.position_embeddings.weight", [config.maxPositions, h])
        tokenType = try t("embeddings.token_type_embeddings.weight", [config.typeVocabSize, h])
        embNorm = try t("embeddings.LayerNorm.weight", [h])
        embNormBias = try t("embeddings.LayerNorm.bias", [h])
        var layers: [Layer] = []
        for i in 0..<config.layers {
            let p = "encoder.layer.\(i)."
            layers.append(Layer(
                qkv: try t(p + "attention.self.query.weight", [h, h]) + t(p + "attention.self.key.weight", [h, h])
                    + t(p + "attention.self.value.weight", [h, h]),
                qkvBias: try t(p + "attention.self.query.bias", [h]) + t(p + "attention.self.key.bias", [h])
                    + t(p + "attention.self.value.bias", [h]),
                attnOut: try t(p + "attention.output.dense.weight", [h, h]),
                attnOutBias: try t(p + "attention.output.dense.bias", [h]),
                norm1: try t(p + "attention.output.LayerNorm.weight", [h]),
                norm1Bias: try t(p + "attention.output.LayerNorm.bias", [h]),
                up: try t(p + "intermediate.dense.weight", [f, h]), upBias: try t(p + "intermediate.dense.bias", [f]),
                down: try t(p + "output.dense.weight", [h, f]), downBias: try t(p + "output.dense.bias", [h]),
                norm2: try t(p + "output.LayerNorm.weight", [h]), norm2Bias: try t(p + "output.LayerNorm.bias", [h])))
        }
        self.layers = layers
    }

    /// Sentence vectors (pooled, unit length) of token-id sequences, in order. Ids must
    /// be below the vocabulary size and sequences no longer than the position table
    /// (the tokenizer guarantees both).
    /// - Complexity: O(tokens x layers x hidden x intermediate) plus O(sum of length^2) for attention.
    func encode(_ sequences: [[Int32]]) -> [[Float]] {
        var out = [[Float]](repeating: [], count: sequences.count)
        // Chunks of whole sequences up to maxChunkTokens tokens (one sequence at least).
        var start = 0
        while start < sequences.count {
            var end = start, tokens = 0
            while end < sequences.count, end == start || tokens + sequences[end].count <= Self.maxChunkTokens {
                tokens += sequences[end].count
                end += 1
            }
            let vectors = forward(Array(sequences[start..<end]))
            for (i, v) in vectors.enumerated() { out[start + i] = v }
            start = end
        }
        return out
    }

    private func forward(_ seqs: [[Int32]]) -> [[Float]] {
        let h = config.hidden, f = config.intermediate
        let total = seqs.reduce(0) { $0 + $1.count }
        var x = [Float](repeating: 0, count: total * h)
        // Embeddings: word + position + token type 0, then layer norm.
        x.withUnsafeMutableBufferPointer { xp in
            words.withUnsafeBufferPointer { w in
                positions.withUnsafeBufferPointer { p in
                    tokenType.withUnsafeBufferPointer { tt in
                        var t = 0
                        for s in seqs {
                            for (pos, id) in s.enumerated() {
                                let wi = Int(id) * h, pi = pos * h, row = t * h
                                for j in 0..<h { xp[row + j] = w[wi + j] + p[pi + j] + tt[j] }
                                t += 1
                            }
                        }
                    }
                }
            }
        }
        layerNorm(&x, rows: total, weight: embNorm, bias: embNormBias)

        var qkv = [Float](repeating: 0, count: total * 3 * h)
        var context = [Float](repeating: 0, count: total * h)
        var upped = [Float](repeating: 0, count: total * f)
        for layer in layers {
            linear(x, rows: total, inDims: h, weight: layer.qkv, bias: layer.qkvBias, outDims: 3 * h, into: &qkv)
            attention(qkv, seqs: seqs, into: &context)
            // x = LayerNorm(context W_o^T + b_o + x): the residual rides in as sgemm's C.
            addBias(layer.attnOutBias, to: &x, rows: total)
            gemm(context, rows: total, inDims: h, weight: layer.attnOut, outDims: h, into: &x)
            layerNorm(&x, rows: total, weight: layer.norm1, bias: layer.norm1Bias)
            linear(x, rows: total, inDims: h, weight: layer.up, bias: layer.upBias, outDims: f, into: &upped)
            gelu(&upped)
            addBias(layer.downBias, to: &x, rows: total)
            gemm(upped, rows: total, inDims: f, weight: layer.down, outDims: h, into: &x)
            layerNorm(&x, rows: total, weight: layer.norm2, bias: layer.norm2Bias)
        }
        return pool(x, seqs: seqs)
    }

    /// `out = a W^T + bias` for `rows` rows.
    private func linear(_ a: [Float], rows: Int, inDims: Int, weight: [Float], bias: [Float], outDims: Int, into out: inout [Float]) {
        out.withUnsafeMutableBufferPointer { o in
            bias.withUnsafeBufferPointer { b in
                for r in 0..<rows { (o.baseAddress! + r * outDims).update(from: b.baseAddress!, count: outDims) }
            }
        }
        gemm(a, rows: rows, inDims: inDims, weight: weight, outDims: outDims, into: &out)
    }

    /// `out += a W^T` (what `out` holds first: the bias, or the residual and the bias).
    private func gemm(_ a: [Float], rows: Int, inDims: Int, weight: [Float], outDims: Int, into out: inout [Float]) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(outDims), Int32(inDims), 1,
                    a, Int32(inDims), weight, Int32(inDims), 1, &out, Int32(outDims))
    }

    private func addBias(_ bias: [Float], to x: inout [Float], rows: Int) {
        let h = bias.count
        x.withUnsafeMutableBufferPointer { xp in
            bias.withUnsafeBufferPointer { b in
                for r in 0..<rows {
                    let row = xp.baseAddress! + r * h
                    for j in 0..<h { row[j] += b[j] }
                }
            }
        }
    }

    /// Scaled dot-product attention of each sequence with itself, head by head:
    /// `softmax(Q K^T / sqrt(d)) V`, read from the stacked `qkv` rows. Sequences are
    /// independent: with several, two threads take every other one (each call of BLAS on
    /// these small matrices runs on one thread).
    private func attention(_ qkv: [Float], seqs: [[Int32]], into context: inout [Float]) {
        let h = config.hidden, heads = config.heads, d = h / heads
        let scale = 1 / Float(d).squareRoot()
        var offsets: [Int] = []
        var t = 0
        for s in seqs {
            offsets.append(t)
            t += s.count
        }
        let starts = offsets
        let maxLen = seqs.map(\.count).max() ?? 0
        let parts = seqs.count > 1 ? Self.threads : 1
        qkv.withUnsafeBufferPointer { q in
            context.withUnsafeMutableBufferPointer { c in
                let qBase = SharedFloats(UnsafeMutablePointer(mutating: q.baseAddress!)), cBase = SharedFloats(c.baseAddress!)
                DispatchQueue.concurrentPerform(iterations: parts) { part in
                    let scores = UnsafeMutablePointer<Float>.allocate(capacity: maxLen * maxLen)
                    defer { scores.deallocate() }
                    for i in stride(from: part, to: seqs.count, by: parts) {
                        let n = seqs[i].count, t0 = starts[i]
                        let rows = UnsafePointer(qBase.base + t0 * 3 * h)
                        for head in 0..<heads {
                            let qh = rows + head * d, kh = rows + h + head * d, vh = rows + 2 * h + head * d
                            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(n), Int32(d), scale,
                                        qh, Int32(3 * h), kh, Int32(3 * h), 0, scores, Int32(n))
                            for r in 0..<n { VectorMath.softmax(scores + r * n, count: n) }
                            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(d), Int32(n), 1,
                                        scores, Int32(n), vh, Int32(3 * h), 0, cBase.base + t0 * h + head * d, Int32(h))
                        }
                    }
                }
            }
        }
    }

    /// In place, per row: `(x - mean) / sqrt(var + eps) * weight + bias`.
    private func layerNorm(_ x: inout [Float], rows: Int, weight: [Float], bias: [Float]) {
        let h = weight.count, eps = config.layerNormEps
        x.withUnsafeMutableBufferPointer { xp in
            weight.withUnsafeBufferPointer { w in
                bias.withUnsafeBufferPointer { b in
                    for r in 0..<rows {
                        let row = xp.baseAddress! + r * h
                        let mean = VectorMath.sum(row, count: h) / Float(h)
                        let variance = VectorMath.squaredDeviations(row, count: h, mean: mean)
                        let inv = 1 / (variance / Float(h) + eps).squareRoot()
                        for j in 0..<h { row[j] = (row[j] - mean) * inv * w[j] + b[j] }
                    }
                }
            }
        }
    }

    /// BERT's GELU, exact (erf) form, in place (``VectorMath/gelu(_:count:)``), in two
    /// halves on two threads when there is enough of it.
    private func gelu(_ x: inout [Float]) {
        x.withUnsafeMutableBufferPointer { p in
            let base = SharedFloats(p.baseAddress!), count = p.count
            let parts = count >= 1 << 16 ? Self.threads : 1
            let chunk = (count + parts - 1) / parts
            DispatchQueue.concurrentPerform(iterations: parts) { part in
                let lo = part * chunk
                VectorMath.gelu(base.base + lo, count: max(0, min(chunk, count - lo)))
            }
        }
    }

    /// Threads for the work BLAS does not do (attention of separate texts, GELU).
    static let threads = max(1, min(2, ProcessInfo.processInfo.activeProcessorCount))

    /// Mean of each sequence's token vectors (or its `[CLS]` vector), scaled to unit length.
    private func pool(_ x: [Float], seqs: [[Int32]]) -> [[Float]] {
        let h = config.hidden
        var out: [[Float]] = []
        out.reserveCapacity(seqs.count)
        var t0 = 0
        for seq in seqs {
            var v = [Float](repeating: 0, count: h)
            switch config.pooling {
            case .cls:
                for j in 0..<h { v[j] = x[t0 * h + j] }
            case .mean:
                for t in t0..<(t0 + seq.count) {
                    for j in 0..<h { v[j] += x[t * h + j] }
                }
                let inv = 1 / Float(seq.count)
                for j in 0..<h { v[j] *= inv }
            }
            var n2: Float = 0
            for value in v { n2 += value * value }
            let inv = n2 > 0 ? 1 / n2.squareRoot() : 0
            out.append(v.map { $0 * inv })
            t0 += seq.count
        }
        return out
    }
}

/// A buffer shared by the threads of one step of the forward pass.
/// @unchecked Sendable: each thread reads what no thread writes and writes a range no other
/// thread touches (its own sequences' rows, its own half), and the step waits for all of
/// them (`concurrentPerform`) before the buffer is used again.
struct SharedFloats: @unchecked Sendable {
    let base: UnsafeMutablePointer<Float>
    init(_ base: UnsafeMutablePointer<Float>) { self.base = base }
}
