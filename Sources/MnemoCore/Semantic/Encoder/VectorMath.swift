/// Elementwise functions of the encoder, written out instead of calling glibc's scalar
/// `erff` and `expf`, which took 30% of a batch's time (perf, 64 texts): GELU calls erf
/// once per feed-forward value, 1536 per token and layer. The loops below are plain
/// element-by-element code on raw pointers, which the optimizer vectorizes (no calls,
/// no branches) and which stays fast in debug builds, unlike generic SIMD types.
///
/// `exp` is Cephes' `expf` (range reduction by ln 2, a degree-5 polynomial, exponent
/// bits), within 2 ulp of the correctly rounded result on [-87, 88]. `erf` is Abramowitz
/// and Stegun 7.1.26 (absolute error below 1.5e-7), which costs one `exp`. Both are far
/// inside what the exactness test allows (cosine >= 0.9999 to sentence-transformers).
enum VectorMath {
    /// e^x for x in [-87.3, 88.7] (clamped; e^-87.3 is about 1e-38).
    @inline(__always)
    static func exp(_ x0: Float) -> Float {
        let x = min(max(x0, -87.3), 88.7)
        // n = round(x / ln 2); r = x - n ln 2 in two parts for precision.
        // Rounding by adding 1.5 x 2^23, which leaves n in the low bits of `shifted` (no
        // call to rintf and no checked float-to-int conversion, neither of which the
        // baseline x86-64 target can vectorize).
        let shifted = x * 1.442_695_04 + 12_582_912
        let n = shifted - 12_582_912
        var r = x - n * 0.693_359_375
        r -= n * -2.121_944_4e-4
        var p: Float = 1.987_569_15e-4
        p = p * r + 1.398_199_950_7e-3
        p = p * r + 8.333_451_907_3e-3
        p = p * r + 4.166_579_589_4e-2
        p = p * r + 1.666_666_545_9e-1
        p = p * r + 5.000_000_120_1e-1
        let e = p * (r * r) + r + 1
        // 2^n through the exponent bits: n + 127, shifted into place.
        return e * Float(bitPattern: (shifted.bitPattern &- 0x4B40_0000 &+ 127) &<< 23)
    }

    /// erf(x).
    @inline(__always)
    static func erf(_ x: Float) -> Float {
        let a = Swift.abs(x)
        let t = 1 / (1 + 0.327_591_1 * a)
        var y: Float = 1.061_405_429
        y = y * t - 1.453_152_027
        y = y * t + 1.421_413_741
        y = y * t - 0.284_496_736
        y = y * t + 0.254_829_592
        let r = 1 - y * t * exp(-(a * a))
        return x < 0 ? -r : r
    }

    /// BERT's GELU in place, exact (erf) form: `x/2 (1 + erf(x / sqrt 2))`.
    static func gelu(_ p: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count {
            let x = p[i]
            p[i] = 0.5 * x * (1 + erf(x * 0.707_106_781_186_547_6))
        }
    }

    /// Softmax of `count` floats in place (max subtracted first).
    static func softmax(_ p: UnsafeMutablePointer<Float>, count n: Int) {
        var m = -Float.infinity
        for i in 0..<n { m = max(m, p[i]) }
        for i in 0..<n { p[i] = exp(p[i] - m) }
        var sum: Float = 0
        for i in 0..<n { sum += p[i] }
        let inv = 1 / sum
        for i in 0..<n { p[i] *= inv }
    }

    /// The sum of `count` floats, in 8 independent partial sums (so the additions need not
    /// wait for each other; the order is fixed, so the result is deterministic).
    @inline(__always)
    static func sum(_ p: UnsafePointer<Float>, count: Int) -> Float {
        var acc: (Float, Float, Float, Float, Float, Float, Float, Float) = (0, 0, 0, 0, 0, 0, 0, 0)
        var i = 0
        while i + 8 <= count {
            acc.0 += p[i]; acc.1 += p[i + 1]; acc.2 += p[i + 2]; acc.3 += p[i + 3]
            acc.4 += p[i + 4]; acc.5 += p[i + 5]; acc.6 += p[i + 6]; acc.7 += p[i + 7]
            i += 8
        }
        var s = ((acc.0 + acc.1) + (acc.2 + acc.3)) + ((acc.4 + acc.5) + (acc.6 + acc.7))
        while i < count {
            s += p[i]
            i += 1
        }
        return s
    }

    /// `sum((x - mean)^2)` of `count` floats, in 8 partial sums like ``sum(_:count:)``.
    @inline(__always)
    static func squaredDeviations(_ p: UnsafePointer<Float>, count: Int, mean: Float) -> Float {
        var acc: (Float, Float, Float, Float, Float, Float, Float, Float) = (0, 0, 0, 0, 0, 0, 0, 0)
        var i = 0
        @inline(__always) func sq(_ k: Int) -> Float {
            let c = p[k] - mean
            return c * c
        }
        while i + 8 <= count {
            acc.0 += sq(i); acc.1 += sq(i + 1); acc.2 += sq(i + 2); acc.3 += sq(i + 3)
            acc.4 += sq(i + 4); acc.5 += sq(i + 5); acc.6 += sq(i + 6); acc.7 += sq(i + 7)
            i += 8
        }
        var s = ((acc.0 + acc.1) + (acc.2 + acc.3)) + ((acc.4 + acc.5) + (acc.6 + acc.7))
        while i < count {
            s += sq(i)
            i += 1
        }
        return s
    }
}
