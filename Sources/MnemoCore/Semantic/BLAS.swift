import CBLAS
import Foundation
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

    /// The OpenBLAS kernels in use (e.g. `SkylakeX`); nil for another BLAS.
    public static var coreName: String? {
        guard let sym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "openblas_get_corename") else { return nil }
        typealias Get = @convention(c) () -> UnsafePointer<CChar>?
        return unsafeBitCast(sym, to: Get.self)().map { String(cString: $0) }
    }

    /// OpenBLAS kernels written before AVX2.
    private static let preAVX2Cores: Set<String> = [
        "prescott", "core2", "penryn", "dunnington", "nehalem", "sandybridge", "atom", "katmai", "coppermine",
        "northwood", "banias", "opteron", "barcelona", "bobcat", "bulldozer", "piledriver", "unknown",
    ]

    /// The `OPENBLAS_CORETYPE` to restart with when OpenBLAS chose kernels below this CPU.
    ///
    /// Debian 12's OpenBLAS 0.3.21 (built with `DYNAMIC_ARCH`) does not recognise CPUs
    /// newer than itself, such as Sapphire Rapids, and falls back to its pre-AVX `Prescott`
    /// kernels: measured here, sgemv over 100k x 384 took 19.9 ms on one thread against 4.5
    /// ms with the `Haswell` or `SkylakeX` kernels, and a 64-query sgemm 68 ms against 19 ms
    /// (`SkylakeX`). OpenBLAS picks its kernels once, when it is loaded, from
    /// `OPENBLAS_CORETYPE` if set; so the process has to start again with it set.
    /// - Returns: nil when the variable is set already, the BLAS is not OpenBLAS, or its
    ///   kernels use AVX2 (whatever it detected is kept).
    public static func betterCoreType() -> String? {
        guard getenv("OPENBLAS_CORETYPE") == nil,
              let core = coreName?.lowercased(), preAVX2Cores.contains(core),
              mnemo_cpu_has_avx2_fma() != 0
        else { return nil }
        return mnemo_cpu_has_avx512_skylakex() != 0 ? "SkylakeX" : "Haswell"
    }

    /// Replaces the process with itself (same arguments, environment and descriptors, so
    /// also the same pid for systemd) with `OPENBLAS_CORETYPE` set (inherited by the processes it starts), when
    /// ``betterCoreType()`` names one; returns only when there is nothing to do or the
    /// exec failed. Call it first thing in `main`, before threads or files are opened.
    public static func restartWithBetterKernelsIfNeeded() {
        // The binary's real path, not /proc/self/exe: the process name comes from it.
        guard let core = betterCoreType(),
              let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        else { return }
        setenv("OPENBLAS_CORETYPE", core, 1)
        execv(path, CommandLine.unsafeArgv)
        unsetenv("OPENBLAS_CORETYPE")
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
