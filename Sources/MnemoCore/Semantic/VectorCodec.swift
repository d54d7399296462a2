import Foundation
import MnemoProtocol

/// Vectors on the wire and on disk: JSON numbers or base64 of little-endian float32
/// (bit-exact, and about ten times cheaper to decode than decimal numbers).
public enum VectorCodec {
    /// Decodes `vector_b64`, checking length and values.
    /// - Throws: `-32602` naming `field` for bad base64, a length that is not a whole
    ///   number of floats, too many dimensions, or a NaN/Inf component.
    public static func decode(base64 s: String, field: String, maxDims: Int) throws(WireError) -> [Float] {
        guard s.utf8.count <= (maxDims * 4 + 2) / 3 * 4 + 4 else {
            throw .invalidParams(field, "more than \(maxDims) dimensions")
        }
        guard let data = Data(base64Encoded: s) else { throw .invalidParams(field, "not standard base64 (with padding)") }
        guard !data.isEmpty, data.count % 4 == 0 else {
            throw .invalidParams(field, "\(data.count) bytes is not a whole number of float32 values")
        }
        let v = fromLittleEndian(data)
        try check(v, field: field, maxDims: maxDims)
        return v
    }

    /// Decodes a JSON array of numbers.
    /// - Throws: `-32602` for a non-number, a value outside float32's range, NaN/Inf, or
    ///   a wrong length.
    public static func decode(numbers: [JSON], field: String, maxDims: Int) throws(WireError) -> [Float] {
        guard numbers.count <= maxDims else { throw .invalidParams(field, "more than \(maxDims) dimensions") }
        var v = [Float]()
        v.reserveCapacity(numbers.count)
        for (i, n) in numbers.enumerated() {
            guard let d = n.doubleValue else { throw .invalidParams("\(field)[\(i)]", "must be a number") }
            v.append(Float(d))
        }
        try check(v, field: field, maxDims: maxDims)
        return v
    }

    /// Little-endian float32 bytes (the on-disk form).
    /// - Complexity: O(n), one copy on a little-endian host.
    public static func bytes(_ v: [Float]) -> Data {
        #if _endian(little)
        return v.withUnsafeBytes { Data($0) }
        #else
        var data = Data(capacity: v.count * 4)
        for x in v { withUnsafeBytes(of: x.bitPattern.littleEndian) { data.append(contentsOf: $0) } }
        return data
        #endif
    }

    /// Floats from little-endian float32 bytes (trailing bytes ignored).
    public static func fromLittleEndian(_ data: Data) -> [Float] {
        let n = data.count / 4
        return data.withUnsafeBytes { raw in
            (0..<n).map { i in Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self))) }
        }
    }

    private static func check(_ v: [Float], field: String, maxDims: Int) throws(WireError) {
        guard !v.isEmpty else { throw .invalidParams(field, "empty vector") }
        guard v.count <= maxDims else { throw .invalidParams(field, "more than \(maxDims) dimensions") }
        if let bad = v.firstIndex(where: { !$0.isFinite }) {
            throw .invalidParams("\(field)[\(bad)]", "NaN or infinite component (or out of float32 range)")
        }
    }

    /// `v` ready to be stored or searched under `metric`: unit length for cosine.
    /// - Throws: `-32602` for an all-zero vector under cosine (it has no direction).
    public static func prepare(_ v: [Float], for metric: Metric, field: String) throws(WireError) -> [Float] {
        guard metric == .cosine else { return v }
        var n2: Double = 0
        for x in v { n2 += Double(x) * Double(x) }
        guard n2 > 0, n2.isFinite else { throw .invalidParams(field, "a zero vector has no direction (metric cosine)") }
        let inv = Float(1 / n2.squareRoot())
        return v.map { $0 * inv }
    }
}
