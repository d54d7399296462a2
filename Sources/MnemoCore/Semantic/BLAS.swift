import CBLAS
#if canImport(Glibc)
import Glibc
#endif

/// The BLAS library this process loaded (Debian's `libblas.so.3` alternative: OpenBLAS
/// once `libopenblas-dev` is installed, else the reference BLAS), found by its symbols.
public enum BLAS {
    /// A description such as `OpenBLAS 0.3.21 ... (threads: 2)` or `reference BLAS (netlib)`.
    public static var loaded: String {
        guard let sym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "openblas_get_config") else {
            return "reference BLAS (netlib)"
        }
        typealias GetConfig = @convention(c) () -> UnsafePointer<CChar>?
        let config = unsafeBitCast(sym, to: GetConfig.self)().map { String(cString: $0) } ?? "OpenBLAS"
        return "\(config) (threads: \(threads))"
    }

    /// Threads OpenBLAS uses per call (1 for the reference BLAS).
    public static var threads: Int {
        guard let sym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "openblas_get_num_threads") else { return 1 }
        typealias Get = @convention(c) () -> Int32
        return Int(unsafeBitCast(sym, to: Get.self)())
    }

    /// Sets OpenBLAS's threads per call (no effect on the reference BLAS).
    public static func setThreads(_ n: Int) {
        guard let sym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "openblas_set_num_threads") else { return }
        typealias Set = @convention(c) (Int32) -> Void
        unsafeBitCast(sym, to: Set.self)(Int32(clamping: n))
    }

    /// `y[i] = sum_j a[i*d + j] * x[j]` for `rows` rows of a row-major matrix (sgemv).
    @inline(__always)
    static func scores(_ a: UnsafePointer<Float>, rows: Int, dims: Int, query x: UnsafePointer<Float>,
                       into y: UnsafeMutablePointer<Float>) {
        cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(rows), Int32(dims), 1, a, Int32(dims), x, 1, 0, y, 1)
    }

    /// `c[q*ldc + i] = sum_j queries[q*d + j] * a[i*d + j]` for `m` queries at once (sgemm).
    @inline(__always)
    static func scores(_ a: UnsafePointer<Float>, rows: Int, dims: Int, queries: UnsafePointer<Float>, m: Int,
                       into c: UnsafeMutablePointer<Float>, ldc: Int) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(rows), Int32(dims), 1,
                    queries, Int32(dims), a, Int32(dims), 0, c, Int32(ldc))
    }
}
