import MnemoProtocol

/// `mnemo-hash-v1`: a deterministic embedder needing no model files and no network.
///
/// Feature hashing: the lower-cased text is split into words (letters and digits); every
/// word, every pair of adjacent words and every character trigram of `#word#` is hashed
/// (FNV-1a, 64 bit) to one of `dims` buckets with a sign taken from another bit of the
/// hash, weighted (word 1, pair 0.5, trigram 0.5), and the sum is normalised to unit
/// length. Texts sharing words and word pieces ("sits"/"sitting") get a high cosine;
/// unrelated texts land near 0. Lexical, not semantic: configure an embeddings endpoint
/// for real models.
public struct HashEmbedder: SingleTextEmbedder {
    /// `mnemo-hash-v1`.
    public let model = "mnemo-hash-v1"
    /// Vector length.
    public let dims: Int

    /// An embedder producing `dims`-long vectors.
    public init(dims: Int = 384) { self.dims = dims }

    /// - Throws: `-32602` when the text has no letters or digits.
    func embedOne(_ text: String, field: String) throws(WireError) -> [Float] {
        let words = Self.words(text)
        guard !words.isEmpty else { throw .invalidParams(field, "has no letters or digits to embed") }
        var v = [Float](repeating: 0, count: dims)
        func add(_ tag: UInt8, _ parts: [Substring.UTF8View], _ weight: Float) {
            var h: UInt64 = 0xcbf2_9ce4_8422_2325
            @inline(__always) func mix(_ b: UInt8) {
                h ^= UInt64(b)
                h = h &* 0x100_0000_01b3
            }
            mix(tag)
            for (i, part) in parts.enumerated() {
                if i > 0 { mix(0x20) }
                for b in part { mix(b) }
            }
            // Final avalanche (splitmix64) so nearby hashes spread over buckets and signs.
            h ^= h >> 30
            h = h &* 0xbf58_476d_1ce4_e5b9
            h ^= h >> 27
            h = h &* 0x94d0_49bb_1331_11eb
            h ^= h >> 31
            v[Int(h % UInt64(dims))] += (h >> 63) == 0 ? weight : -weight
        }
        for (i, w) in words.enumerated() {
            add(0x77, [w.utf8], 1)
            if i > 0 { add(0x62, [words[i - 1].utf8, w.utf8], 0.5) }
            let padded = Array(("#" + w + "#").utf8)
            if padded.count >= 3 {
                for j in 0...(padded.count - 3) {
                    let tri = String(decoding: padded[j..<(j + 3)], as: UTF8.self)
                    add(0x74, [Substring(tri).utf8], 0.5)
                }
            }
        }
        var n2: Float = 0
        for x in v { n2 += x * x }
        let inv = n2 > 0 ? 1 / n2.squareRoot() : 0
        return v.map { $0 * inv }
    }

    /// Lower-cased runs of letters and digits.
    static func words(_ text: String) -> [Substring] {
        let lower = text.lowercased()
        return lower.split { !($0.isLetter || $0.isNumber) }
    }
}
