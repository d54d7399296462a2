import MnemoProtocol
import Testing

@Suite("Timestamp")
struct TimestampTests {
    @Test(
        "known instants format as RFC 3339 UTC with milliseconds",
        arguments: [
            (0, "1970-01-01T00:00:00.000Z"),
            (1, "1970-01-01T00:00:00.001Z"),
            (-1, "1969-12-31T23:59:59.999Z"),
            (86_399_999, "1970-01-01T23:59:59.999Z"),
            (86_400_000, "1970-01-02T00:00:00.000Z"),
            (1_709_210_096_789, "2024-02-29T12:34:56.789Z"),  // leap day
            (951_782_400_000, "2000-02-29T00:00:00.000Z"),  // leap day of a 400-year
            (4_107_542_399_999, "2100-02-28T23:59:59.999Z"),  // 2100 is not a leap year
            (-2_203_891_200_000, "1900-03-01T00:00:00.000Z"),
            (1_795_306_492_123, "2026-11-22T00:14:52.123Z"),
            (253_402_300_799_999, "9999-12-31T23:59:59.999Z"),
            (-62_135_596_800_000, "0001-01-01T00:00:00.000Z"),
        ] as [(Int64, String)])
    func format(_ ms: Int64, _ text: String) {
        #expect(Timestamp.format(ms) == text)
        #expect(Timestamp.parse(text) == ms)
    }

    @Test("write emits the quoted form")
    func write() throws {
        var w = JSONWriter()
        Timestamp.write(1_709_210_096_789, to: &w)
        #expect(String(decoding: w.bytes, as: UTF8.self) == #""2024-02-29T12:34:56.789Z""#)
        #expect(try JSONParser.parse(w.bytes) == .string("2024-02-29T12:34:56.789Z"))
    }

    @Test("parse(format(ms)) == ms from year 1 to year 9999 (seeded sample and day boundaries)")
    func roundTrip() {
        let lo: Int64 = -62_135_596_800_000
        let hi: Int64 = 253_402_300_799_999
        var rng = SplitMix64(seed: 7)
        var samples: [Int64] = [lo, hi, 0, -1, 1]
        for _ in 0..<20_000 { samples.append(lo + Int64(rng.next() % UInt64(hi - lo + 1))) }
        // every day boundary of 1999-2001, +-1 ms
        for day in Int64(10_592)...Int64(11_323) {
            let t = day * 86_400_000
            samples += [t - 1, t, t + 1]
        }
        for ms in samples {
            let text = Timestamp.format(ms)
            #expect(text.utf8.count == 24, "\(ms) -> \(text)")
            #expect(Timestamp.parse(text) == ms, "\(ms) -> \(text)")
        }
    }

    @Test(
        "offsets are applied",
        arguments: [
            "2024-02-29T14:34:56.789+02:00",
            "2024-02-29T07:04:56.789-05:30",
            "2024-02-29T12:34:56.789+00:00",
            "2024-02-29T12:34:56.789-00:00",
            "2024-03-01T02:34:56.789+14:00",
            "2024-02-29T12:34:56.789z",
            "2024-02-29t12:34:56.789Z",
            "2024-02-29 12:34:56.789Z",
        ])
    func offsets(_ text: String) {
        #expect(Timestamp.parse(text) == 1_709_210_096_789)
    }

    @Test("an offset can move the instant across midnight and the epoch")
    func offsetAcrossMidnight() {
        #expect(Timestamp.parse("1970-01-01T00:30:00Z") == 1_800_000)
        #expect(Timestamp.parse("1970-01-01T00:30:00+01:00") == -1_800_000)
        #expect(Timestamp.parse("1969-12-31T23:00:00-01:00") == 0)
    }

    @Test(
        "fractions of 1 to 9 digits give milliseconds (extra digits truncated); none is whole seconds",
        arguments: [
            ("", 0), (".1", 100), (".12", 120), (".123", 123), (".1234", 123), (".12345", 123),
            (".123456", 123), (".1234567", 123), (".12345678", 123), (".123456789", 123), (".999999999", 999),
            (".000000001", 0), (".5", 500), (".05", 50),
        ] as [(String, Int64)])
    func fractions(_ fraction: String, _ ms: Int64) {
        #expect(Timestamp.parse("2024-02-29T12:34:56\(fraction)Z") == 1_709_210_096_000 + ms)
        #expect(Timestamp.parse("2024-02-29T14:34:56\(fraction)+02:00") == 1_709_210_096_000 + ms)
    }

    @Test(
        "impossible dates and malformed text are rejected",
        arguments: [
            "2024-02-30T00:00:00Z",  // Feb 30
            "2023-02-29T00:00:00Z",  // not a leap year
            "1900-02-29T00:00:00Z",  // century, not a leap year
            "2100-02-29T00:00:00Z",
            "2024-04-31T00:00:00Z",  // April has 30 days
            "2024-13-01T00:00:00Z",  // month 13
            "2024-00-10T00:00:00Z",  // month 0
            "2024-01-00T00:00:00Z",  // day 0
            "2024-01-32T00:00:00Z",
            "2024-01-01T24:00:00Z",  // hour 24
            "2024-01-01T23:60:00Z",  // minute 60
            "2024-01-01T23:59:61Z",
            "2024-01-01T00:00:00",  // no offset
            "2024-01-01T00:00:00.Z",  // dot without digits
            "2024-01-01T00:00:00.123",
            "2024-01-01T00:00:00+02",  // short offset
            "2024-01-01T00:00:00+0200",
            "2024-01-01T00:00:00+2:00",
            "2024-01-01T00:00:00+24:00",
            "2024-01-01T00:00:00+02:60",
            "2024-01-01T00:00:00Z ",  // trailing data
            "2024-01-01T00:00:00ZZ",
            "2024-01-01T00:00:00+02:00x",
            " 2024-01-01T00:00:00Z",
            "2024-01-01X00:00:00Z",
            "2024/01/01T00:00:00Z",
            "2024-1-01T00:00:00Z",
            "24-01-01T00:00:00Z",
            "2024-0a-01T00:00:00Z",
            "2024-01-01T0:00:00Z",
            "2024-01-01",
            "",
            "not a date at all, at all",
            "+2024-01-01T00:00:00Z",
        ])
    func rejects(_ text: String) {
        #expect(Timestamp.parse(text) == nil)
    }

    @Test("the last day of every month is accepted, the day after is not")
    func monthLengths() {
        let lengths = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        for (i, days) in lengths.enumerated() {
            let m = String(i + 1).count == 1 ? "0\(i + 1)" : "\(i + 1)"
            #expect(Timestamp.parse("2023-\(m)-\(days)T00:00:00Z") != nil, "2023-\(m)-\(days)")
            #expect(Timestamp.parse("2023-\(m)-\(days + 1)T00:00:00Z") == nil, "2023-\(m)-\(days + 1)")
        }
    }
}
