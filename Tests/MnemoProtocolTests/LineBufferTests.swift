import MnemoProtocol
import Testing

/// What a reader of the buffer sees: a line's text or the over-long marker.
enum Got: Equatable, CustomStringConvertible {
    case line(String)
    case tooLong

    var description: String {
        switch self {
        case .line(let s): return "line(\(s.debugDescription))"
        case .tooLong: return "tooLong"
        }
    }
}

extension LineBuffer {
    mutating func feed(_ text: String) { feed(Array(text.utf8)) }

    mutating func feed(_ bytes: [UInt8]) { bytes.withUnsafeBytes { append($0) } }

    /// Every line available now, the way the server drains the buffer (then compacts).
    mutating func drain(maxLine: Int) -> [Got] {
        var out: [Got] = []
        while let l = next(maxLine: maxLine) {
            switch l {
            case .line(let r): out.append(.line(String(decoding: storage[r], as: UTF8.self)))
            case .tooLong: out.append(.tooLong)
            }
        }
        compact()
        return out
    }
}

@Suite("LineBuffer")
struct LineBufferTests {
    @Test("a line split across appends is delivered once complete")
    func splitAcrossAppends() {
        var b = LineBuffer()
        b.feed("{\"a\":")
        #expect(b.drain(maxLine: 100) == [])
        b.feed("1")
        #expect(b.drain(maxLine: 100) == [])
        b.feed("}\n")
        #expect(b.drain(maxLine: 100) == [.line("{\"a\":1}")])
        #expect(b.drain(maxLine: 100) == [])
    }

    @Test("byte-by-byte appends give the same lines")
    func byteByByte() {
        var b = LineBuffer()
        var got: [Got] = []
        for byte in Array("one\ntwo\n\nthree\n".utf8) {
            b.feed([byte])
            got += b.drain(maxLine: 100)
        }
        #expect(got == [.line("one"), .line("two"), .line(""), .line("three")])
    }

    @Test("several lines in one append, in order, with the partial tail kept")
    func severalInOneAppend() {
        var b = LineBuffer()
        b.feed("a\nbb\nccc\ndd")
        #expect(b.drain(maxLine: 100) == [.line("a"), .line("bb"), .line("ccc")])
        #expect(b.hasPartialLine)
        b.feed("d\n")
        #expect(b.drain(maxLine: 100) == [.line("ddd")])
        #expect(!b.hasPartialLine)
    }

    @Test("CRLF line ends are tolerated; a lone CR inside a line is kept")
    func crlf() {
        var b = LineBuffer()
        b.feed("a\r\nb\r")
        #expect(b.drain(maxLine: 100) == [.line("a")])
        b.feed("\nc\rd\n\r\n")
        #expect(b.drain(maxLine: 100) == [.line("b"), .line("c\rd"), .line("")])
    }

    @Test("a line of exactly maxLine bytes is delivered, one more byte is tooLong")
    func lengthBoundary() {
        var b = LineBuffer()
        let exact = String(repeating: "x", count: 64)
        b.feed(exact + "\n" + exact + "y\n" + "ok\n")
        #expect(b.drain(maxLine: 64) == [.line(exact), .tooLong, .line("ok")])
    }

    @Test("an over-long line split across appends gives exactly one tooLong, then the next line intact")
    func tooLongAcrossAppends() {
        let maxLine = 1024
        let chunk = 100
        var b = LineBuffer()
        var got: [Got] = []
        var maxStorage = 0
        b.feed("first\n")
        got += b.drain(maxLine: maxLine)
        for _ in 0..<100 {  // 10_000 bytes without a newline
            b.feed([UInt8](repeating: UInt8(ascii: "x"), count: chunk))
            maxStorage = max(maxStorage, b.storage.count)
            got += b.drain(maxLine: maxLine)
            #expect(b.hasPartialLine)
        }
        b.feed("xx\nafter")
        got += b.drain(maxLine: maxLine)
        b.feed("\n")
        got += b.drain(maxLine: maxLine)
        #expect(got == [.line("first"), .tooLong, .line("after")])
        #expect(!b.hasPartialLine)
        #expect(maxStorage <= maxLine + chunk + "first\n".utf8.count)
    }

    @Test("memory stays bounded by maxLine + one append while an over-long line streams in")
    func boundedMemory() {
        let maxLine = 1000
        for chunk in [1, 7, 100, 999, 1000, 1001, 4096] {
            var b = LineBuffer()
            var got: [Got] = []
            var sent = 0
            while sent < 50_000 {
                b.feed([UInt8](repeating: UInt8(ascii: "z"), count: chunk))
                sent += chunk
                #expect(b.storage.count <= maxLine + chunk, "chunk \(chunk) after \(sent) bytes")
                got += b.drain(maxLine: maxLine)
            }
            b.feed("\n{}\n")
            got += b.drain(maxLine: maxLine)
            #expect(got == [.tooLong, .line("{}")], "chunk \(chunk)")
        }
    }

    @Test("storage stays within maxLine + one append when short lines come before an over-long one")
    func boundedMemoryAfterShortLines() {
        let maxLine = 1000
        let chunk = 500
        var b = LineBuffer()
        var worst = 0
        b.feed("ok\n" + String(repeating: "z", count: 500))  // 500 pending + 500 more = exactly maxLine, not yet over
        _ = b.drain(maxLine: maxLine)
        for _ in 0..<20 {
            b.feed([UInt8](repeating: UInt8(ascii: "z"), count: chunk))
            worst = max(worst, b.storage.count)
            _ = b.drain(maxLine: maxLine)
        }
        do {
            #expect(worst <= maxLine + chunk)
        }
    }

    @Test("hasPartialLine: false when empty or drained, true with a partial line or while discarding")
    func partialLine() {
        var b = LineBuffer()
        #expect(!b.hasPartialLine)
        b.feed("abc")
        #expect(b.hasPartialLine)
        #expect(b.drain(maxLine: 10) == [])
        #expect(b.hasPartialLine)
        b.feed("\n")
        #expect(b.drain(maxLine: 10) == [.line("abc")])
        #expect(!b.hasPartialLine)
        #expect(b.pendingCount == 0)

        // discarding an over-long line: the buffer is emptied but the line is still open
        b.feed(String(repeating: "q", count: 50))
        #expect(b.drain(maxLine: 10) == [])
        #expect(b.pendingCount == 0)
        #expect(b.hasPartialLine)
        b.feed("q\n")
        #expect(b.drain(maxLine: 10) == [.tooLong])
        #expect(!b.hasPartialLine)
    }

    @Test("compact keeps a partial line and its bytes")
    func compactKeepsPartial() {
        var b = LineBuffer()
        b.feed("line-one\npart")
        guard case .line(let r)? = b.next(maxLine: 100) else {
            Issue.record("expected a line")
            return
        }
        #expect(String(decoding: b.storage[r], as: UTF8.self) == "line-one")
        #expect(b.next(maxLine: 100) == nil)
        b.compact()
        #expect(b.pendingCount == 4)
        #expect(Array(b.storage.suffix(4)) == Array("part".utf8))
        b.feed("ial\n")
        #expect(b.drain(maxLine: 100) == [.line("partial")])
    }

    @Test("compact after everything was consumed empties the storage")
    func compactEmpties() {
        var b = LineBuffer()
        b.feed("a\nb\n")
        #expect(b.drain(maxLine: 100) == [.line("a"), .line("b")])
        #expect(b.storage.isEmpty)
    }

    @Test("many lines through one long-lived buffer stay in order and the storage stays small")
    func longLived() {
        var b = LineBuffer()
        var expected: [Got] = []
        var got: [Got] = []
        var pending = ""
        for i in 0..<5000 {
            pending += "{\"i\":\(i)}\n"
            expected.append(.line("{\"i\":\(i)}"))
            if i % 7 == 0 {
                // cut the text at an arbitrary point
                let cut = pending.index(pending.startIndex, offsetBy: pending.count / 2)
                b.feed(String(pending[..<cut]))
                got += b.drain(maxLine: 64)
                pending = String(pending[cut...])
            }
        }
        b.feed(pending)
        got += b.drain(maxLine: 64)
        #expect(got == expected)
        #expect(b.storage.count < 1024)
    }
}
