#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension String {
    /// Whether the two strings have the same UTF-8 bytes (not merely canonically
    /// equivalent), with a `memcmp` instead of a generic element-by-element walk.
    @inlinable
    func utf8Equals(_ other: String) -> Bool {
        guard utf8.count == other.utf8.count else { return false }
        var a = self
        var b = other
        return a.withUTF8 { pa in b.withUTF8 { pb in pa.count == 0 || memcmp(pa.baseAddress!, pb.baseAddress!, pa.count) == 0 } }
    }

    /// Whether this string's UTF-8 bytes are exactly `bytes`.
    @inlinable
    func utf8Equals(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard utf8.count == bytes.count else { return false }
        var a = self
        return a.withUTF8 { pa in pa.count == 0 || memcmp(pa.baseAddress!, bytes.baseAddress!, pa.count) == 0 }
    }
}
