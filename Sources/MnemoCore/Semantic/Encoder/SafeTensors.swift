import Foundation
import MnemoProtocol

/// A `.safetensors` file: an 8-byte little-endian header length, a JSON header naming
/// each tensor's dtype, shape and byte range (`data_offsets`, relative to the end of the
/// header), then the raw little-endian tensor data.
///
/// Hand-written (about 80 lines) rather than a dependency: the Swift package mirror has no
/// kept safetensors reader, and the format is three fields. Every offset is checked
/// against the file before it is read.
struct SafeTensors {
    /// One tensor's entry in the header.
    struct Entry {
        var dtype: String
        var shape: [Int]
        var range: Range<Int>
    }

    let path: String
    let entries: [String: Entry]
    private let data: Data
    private let base: Int

    /// Reads and indexes `path`.
    /// - Throws: ``ModelError`` naming the file for a missing file, a bad header or a
    ///   tensor outside the file.
    init(path: String) throws(ModelError) {
        self.path = path
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        } catch {
            throw ModelError(path, "cannot read: \(error.localizedDescription)")
        }
        guard data.count >= 8 else { throw ModelError(path, "too short for a safetensors header (\(data.count) bytes)") }
        let n = data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard n > 1, n <= 100_000_000, Int(n) <= data.count - 8 else {
            throw ModelError(path, "header length \(n) does not fit the file (\(data.count) bytes)")
        }
        let header: JSON
        do {
            header = try JSONParser.parse(data[8..<(8 + Int(n))], maxDepth: 8)
        } catch {
            throw ModelError(path, "header is not JSON: \(error)")
        }
        guard let members = header.objectValue else { throw ModelError(path, "header is not a JSON object") }
        let size = data.count - 8 - Int(n)
        var entries: [String: Entry] = [:]
        for m in members where m.key != "__metadata__" {
            guard let dtype = m.value["dtype"]?.stringValue,
                  let shape = m.value["shape"]?.arrayValue?.map({ $0.int64Value.map { Int($0) } }),
                  let offsets = m.value["data_offsets"]?.arrayValue?.compactMap(\.int64Value), offsets.count == 2
            else { throw ModelError(path, "tensor \(m.key): entry lacks dtype, shape or data_offsets") }
            let dims = shape.compactMap { $0 }
            guard dims.count == shape.count, dims.allSatisfy({ $0 >= 0 }) else {
                throw ModelError(path, "tensor \(m.key): bad shape")
            }
            let lo = Int(offsets[0]), hi = Int(offsets[1])
            guard lo >= 0, lo <= hi, hi <= size else {
                throw ModelError(path, "tensor \(m.key): bytes \(lo)..<\(hi) lie outside the data (\(size) bytes)")
            }
            entries[m.key] = Entry(dtype: dtype, shape: dims, range: lo..<hi)
        }
        self.data = data
        self.base = 8 + Int(n)
        self.entries = entries
    }

    /// The tensor `name` as float32 values, checked against `shape`; F32, F16 and BF16
    /// are read (the last two widened exactly).
    /// - Throws: ``ModelError`` for a missing tensor, another shape or dtype, or a byte
    ///   range that does not match the shape.
    func floats(_ name: String, shape: [Int]) throws(ModelError) -> [Float] {
        guard let e = entries[name] else { throw ModelError(path, "missing tensor \(name)") }
        guard e.shape == shape else { throw ModelError(path, "tensor \(name) has shape \(e.shape), expected \(shape)") }
        let count = shape.reduce(1, *)
        let width: Int
        switch e.dtype {
        case "F32": width = 4
        case "F16", "BF16": width = 2
        default: throw ModelError(path, "tensor \(name) has dtype \(e.dtype); F32, F16 or BF16 expected")
        }
        guard e.range.count == count * width else {
            throw ModelError(path, "tensor \(name): \(e.range.count) bytes for \(count) values of \(e.dtype)")
        }
        let start = base + e.range.lowerBound
        let dtype = e.dtype
        return data.withUnsafeBytes { raw in
            let bytes = UnsafeRawBufferPointer(rebasing: raw[start..<(start + e.range.count)])
            return [Float](unsafeUninitializedCapacity: count) { out, n in
                switch dtype {
                case "F32":
                    #if _endian(little)
                    // Stored as this machine holds floats: one copy (the bulk of a load).
                    UnsafeMutableRawBufferPointer(out).copyMemory(from: bytes)
                    #else
                    for i in 0..<count {
                        out[i] = Float(bitPattern: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
                    }
                    #endif
                case "F16":
                    for i in 0..<count {
                        out[i] = Float(Float16(bitPattern: UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))))
                    }
                default:  // BF16: the upper half of a float32
                    for i in 0..<count {
                        let half = UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
                        out[i] = Float(bitPattern: UInt32(half) << 16)
                    }
                }
                n = count
            }
        }
    }
}
