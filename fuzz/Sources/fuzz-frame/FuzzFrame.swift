import MnemoProtocol

/// Feeds the input to a LineBuffer in chunks whose sizes come from the input itself, and
/// checks what a connection relies on: every line returned is within the cap and holds no
/// newline; the lines returned are exactly the input's lines within the cap, in order
/// (one trailing CR dropped: CRLF is tolerated), and each longer line is reported once as
/// too long; the buffer never holds more than the cap plus one chunk.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzFrame(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size > 0 else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let maxLine = 16 + Int(bytes[0] % 64)
    var buffer = LineBuffer()
    var offset = 1
    var chunkSeed = Int(bytes[0])
    var delivered: [[UInt8]] = []
    var tooLong = 0
    while offset < bytes.count {
        chunkSeed = (chunkSeed &* 31 &+ 7) & 0xFF
        let chunk = min(bytes.count - offset, 1 + chunkSeed % 40)
        bytes[offset..<(offset + chunk)].withUnsafeBytes { buffer.append($0) }
        offset += chunk
        while let line = buffer.next(maxLine: maxLine) {
            switch line {
            case .line(let range):
                precondition(range.count <= maxLine, "line of \(range.count) bytes over the cap \(maxLine)")
                let text = Array(buffer.storage[range])
                precondition(!text.contains(0x0A), "a returned line holds a newline")
                delivered.append(text)
            case .tooLong:
                tooLong += 1
            }
        }
        buffer.compact()
        precondition(buffer.storage.count <= maxLine + 41, "buffer holds \(buffer.storage.count) bytes, cap \(maxLine)")
    }
    // Every complete line of the input within the cap came out, in order.
    let input = bytes.dropFirst()
    var expected: [[UInt8]] = []
    var longOnes = 0
    var current: [UInt8] = []
    for b in input {
        if b == 0x0A {
            if current.count > maxLine {
                longOnes += 1
            } else {
                if current.last == 0x0D { current.removeLast() }
                expected.append(current)
            }
            current = []
        } else {
            current.append(b)
        }
    }
    precondition(delivered == expected, "lines differ from the input's")
    precondition(tooLong == longOnes, "\(tooLong) over-long reports for \(longOnes) over-long lines")
    return 0
}
