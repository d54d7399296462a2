#if canImport(Glibc)
import Glibc
#endif
/// Splits a byte stream into `\n`-terminated lines with a hard cap on line length.
///
/// Bytes are kept only up to the cap: a longer line switches the buffer into a discard
/// mode that drops bytes until the next `\n`, then reports ``Line/tooLong`` once, so a
/// client that sends a huge line gets an error and keeps its connection while the server's
/// memory stays bounded.
public struct LineBuffer: Sendable {
    /// What ``next(maxLine:)`` found.
    public enum Line: Equatable, Sendable {
        /// A complete line: the byte range (without `\n`) in ``storage``.
        case line(Range<Int>)
        /// A line longer than the cap ended; its bytes were dropped.
        case tooLong
    }

    /// Buffered bytes; lines returned by ``next(maxLine:)`` are ranges into this.
    public private(set) var storage: [UInt8] = []
    private var start = 0
    private var scanned = 0
    private var discarding = false

    /// An empty buffer.
    public init() {}

    /// Bytes held that do not yet form a complete line.
    public var pendingCount: Int { storage.count - start }

    /// Whether a partial line (or a discarded over-long one) is in progress.
    public var hasPartialLine: Bool { pendingCount > 0 || discarding }

    /// Appends bytes read from the socket.
    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        storage.append(contentsOf: bytes.bindMemory(to: UInt8.self))
    }

    /// The next complete line, if any. Call ``compact()`` after consuming lines.
    public mutating func next(maxLine: Int) -> Line? {
        while true {
            let count = storage.count
            let from = Swift.max(scanned, start)
            let found: Int? = storage.withUnsafeBufferPointer { buf in
                guard from < count, let base = buf.baseAddress,
                      let hit = memchr(base + from, 0x0A, count - from) else { return nil }
                return base.distance(to: hit.assumingMemoryBound(to: UInt8.self))
            }
            guard let nl = found else {
                scanned = count
                if discarding {
                    storage.removeAll(keepingCapacity: true)
                    start = 0
                    scanned = 0
                } else if count - start > maxLine {
                    discarding = true
                    storage.removeAll(keepingCapacity: true)
                    start = 0
                    scanned = 0
                }
                return nil
            }
            let lineStart = start
            start = nl + 1
            scanned = start
            if discarding {
                discarding = false
                return .tooLong
            }
            if nl - lineStart > maxLine { return .tooLong }
            var end = nl
            if end > lineStart, storage[end - 1] == 0x0D { end -= 1 }  // tolerate CRLF
            return .line(lineStart..<end)
        }
    }

    /// Drops consumed bytes (call after handling the lines returned so far).
    public mutating func compact() {
        if start == storage.count {
            storage.removeAll(keepingCapacity: storage.capacity <= 1 << 16)
            start = 0
            scanned = 0
        } else if start > 0 {
            // Drop consumed lines so that only the partial line stays (bounded by maxLine).
            storage.removeSubrange(0..<start)
            scanned -= start
            start = 0
        }
    }
}
