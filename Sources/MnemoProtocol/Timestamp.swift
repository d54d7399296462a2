/// RFC 3339 timestamps in UTC with milliseconds, the wire's only time format
/// (`2026-11-22T00:14:52.123Z`). Times are integers of milliseconds since the Unix epoch.
public enum Timestamp {
    /// Appends the RFC 3339 form of `ms` (quoted) to a writer.
    public static func write(_ ms: Int64, to w: inout JSONWriter) {
        w.byte(UInt8(ascii: "\""))
        appendDigits(ms, to: &w.bytes)
        w.byte(UInt8(ascii: "\""))
    }

    /// The RFC 3339 form of `ms`.
    public static func format(_ ms: Int64) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(24)
        appendDigits(ms, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    private static func appendDigits(_ ms: Int64, to out: inout [UInt8]) {
        let days = floorDiv(ms, 86_400_000)
        let msOfDay = ms - days * 86_400_000
        let (y, m, d) = civil(fromDays: days)
        put4(y, &out); out.append(UInt8(ascii: "-")); put2(m, &out); out.append(UInt8(ascii: "-")); put2(d, &out)
        out.append(UInt8(ascii: "T"))
        put2(msOfDay / 3_600_000, &out); out.append(UInt8(ascii: ":"))
        put2(msOfDay / 60_000 % 60, &out); out.append(UInt8(ascii: ":"))
        put2(msOfDay / 1000 % 60, &out); out.append(UInt8(ascii: "."))
        let frac = msOfDay % 1000
        out.append(UInt8(truncatingIfNeeded: frac / 100) &+ 48)
        put2(frac % 100, &out)
        out.append(UInt8(ascii: "Z"))
    }

    @inline(__always) private static func put2(_ v: Int64, _ out: inout [UInt8]) {
        out.append(UInt8(truncatingIfNeeded: v / 10 % 10) &+ 48)
        out.append(UInt8(truncatingIfNeeded: v % 10) &+ 48)
    }

    @inline(__always) private static func put4(_ v: Int64, _ out: inout [UInt8]) {
        put2(v / 100, &out)
        put2(v % 100, &out)
    }

    /// Parses an RFC 3339 timestamp (any offset, optional fraction) to epoch milliseconds.
    /// Returns nil for anything else, including impossible dates.
    public static func parse(_ s: String) -> Int64? {
        let b = Array(s.utf8)
        guard b.count >= 20 else { return nil }
        func num(_ from: Int, _ count: Int) -> Int64? {
            guard from + count <= b.count else { return nil }
            var v: Int64 = 0
            for i in from..<(from + count) {
                let d = b[i] &- 48
                guard d < 10 else { return nil }
                v = v * 10 + Int64(d)
            }
            return v
        }
        guard let y = num(0, 4), b[4] == UInt8(ascii: "-"), let mo = num(5, 2), b[7] == UInt8(ascii: "-"),
            let d = num(8, 2), b[10] == UInt8(ascii: "T") || b[10] == UInt8(ascii: "t") || b[10] == 0x20,
            let h = num(11, 2), b[13] == UInt8(ascii: ":"), let mi = num(14, 2), b[16] == UInt8(ascii: ":"),
            let sec = num(17, 2)
        else { return nil }
        guard (1...12).contains(mo), d >= 1, d <= daysIn(month: mo, year: y), h < 24, mi < 60, sec < 60 else {
            return nil
        }
        var i = 19
        var frac: Int64 = 0
        if i < b.count, b[i] == UInt8(ascii: ".") {
            i += 1
            var digits = 0
            while i < b.count, b[i] &- 48 < 10 {
                if digits < 3 { frac = frac * 10 + Int64(b[i] - 48) }
                digits += 1
                i += 1
            }
            guard digits > 0 else { return nil }
            var k = digits
            while k < 3 { frac *= 10; k += 1 }
        }
        guard i < b.count else { return nil }
        var offsetMs: Int64 = 0
        if b[i] == UInt8(ascii: "Z") || b[i] == UInt8(ascii: "z") {
            i += 1
        } else if b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") {
            let sign: Int64 = b[i] == UInt8(ascii: "+") ? 1 : -1
            guard let oh = num(i + 1, 2), i + 3 < b.count, b[i + 3] == UInt8(ascii: ":"), let om = num(i + 4, 2),
                oh < 24, om < 60
            else { return nil }
            offsetMs = sign * (oh * 3_600_000 + om * 60_000)
            i += 6
        } else {
            return nil
        }
        guard i == b.count else { return nil }
        let days = daysFromCivil(y, mo, d)
        return days * 86_400_000 + h * 3_600_000 + mi * 60_000 + sec * 1000 + frac - offsetMs
    }

    private static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 { a >= 0 ? a / b : (a - b + 1) / b }

    private static func daysIn(month: Int64, year: Int64) -> Int64 {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    // Howard Hinnant's days-from-civil and civil-from-days algorithms (proleptic Gregorian).
    private static func daysFromCivil(_ y0: Int64, _ m: Int64, _ d: Int64) -> Int64 {
        let y = m <= 2 ? y0 - 1 : y0
        let era = floorDiv(y, 400)
        let yoe = y - era * 400
        let doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    private static func civil(fromDays z0: Int64) -> (Int64, Int64, Int64) {
        let z = z0 + 719_468
        let era = floorDiv(z, 146_097)
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }
}
