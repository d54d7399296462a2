import Foundation
import MnemoProtocol
#if canImport(Glibc)
import Glibc
#endif

/// A blocking Unix-socket connection that sends a request and reads one reply.
final class BenchSocket {  // used by one client thread at a time
    let fd: Int32
    private var buffer = [UInt8](repeating: 0, count: 1 << 16)
    private var start = 0
    private var end = 0

    init(path: String) throws {
        switch UnixSocket.connect(path) {
        case .success(let connected): fd = connected
        case .failure(let e): throw BenchError(e.description)
        }
    }

    deinit { close(fd) }

    func send(_ bytes: [UInt8]) throws {
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + off, $0.count - off, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw BenchError("send failed") }
            off += n
        }
    }

    private func fill() throws {
        if start == end { start = 0; end = 0 }
        if end == buffer.count {
            buffer.removeSubrange(0..<start)
            end -= start
            start = 0
            buffer.append(contentsOf: [UInt8](repeating: 0, count: buffer.count))
        }
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress! + end, $0.count - end) }
        guard n > 0 else { throw BenchError("connection closed") }
        end += n
    }

    /// Reads one `\n`-terminated line; returns it without the newline.
    func readLine() throws -> ArraySlice<UInt8> {
        var scanned = start
        while true {
            let found: Int? = buffer.withUnsafeBytes { raw in
                guard scanned < end, let base = raw.baseAddress,
                    let p = memchr(base + scanned, 0x0A, end - scanned)
                else { return nil }
                return base.distance(to: UnsafeRawPointer(p))
            }
            if let nl = found {
                let line = buffer[start..<nl]
                start = nl + 1
                return line
            }
            let consumed = end - start
            try fill()
            scanned = start + consumed
        }
    }

    /// Reads `n` raw bytes.
    func readBytes(_ n: Int) throws {
        while end - start < n { try fill() }
        start += n
    }

    /// Reads one RESP bulk string reply and returns its body.
    func readRESPBulk() throws -> [UInt8] {
        let line = try readLine()
        guard line.first == UInt8(ascii: "$"), let len = Int(String(decoding: line.dropFirst().dropLast(), as: UTF8.self)),
            len >= 0
        else { throw BenchError("not a bulk string: \(String(decoding: line, as: UTF8.self))") }
        while end - start < len + 2 { try fill() }
        let body = Array(buffer[start..<(start + len)])
        start += len + 2
        return body
    }

    /// Reads one RESP reply (simple string, error, integer, or bulk string).
    func readRESP() throws -> ArraySlice<UInt8> {
        let line = try readLine()
        guard let first = line.first else { throw BenchError("empty RESP line") }
        if first == UInt8(ascii: "-") { throw BenchError("redis error: \(String(decoding: line, as: UTF8.self))") }
        if first == UInt8(ascii: "$") {
            let len = Int(String(decoding: line.dropFirst().dropLast(), as: UTF8.self)) ?? -1
            if len >= 0 { try readBytes(len + 2) }
        }
        return line
    }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// An in-process raw echo server (the round-trip floor): one thread per connection,
/// each line written back as is.
final class EchoServer: @unchecked Sendable {
    // @unchecked: `fd` and `path` are set once in init.
    let path: String
    let fd: Int32

    init(path: String) throws {
        self.path = path
        unlink(path)
        fd = UnixSocket.make()
        guard var addr = UnixSocket.address(path) else { throw BenchError("bad socket path \(path)") }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0, listen(fd, 128) == 0 else { throw BenchError("echo bind failed") }
        let listenFD = fd
        Thread.detachNewThread {
            while true {
                let c = accept(listenFD, nil, nil)
                if c < 0 { return }
                Thread.detachNewThread {
                    var buf = [UInt8](repeating: 0, count: 65536)
                    while true {
                        let n = buf.withUnsafeMutableBytes { read(c, $0.baseAddress, $0.count) }
                        if n <= 0 { break }
                        var off = 0
                        while off < n {
                            let w = buf.withUnsafeBytes { write(c, $0.baseAddress! + off, n - off) }
                            if w <= 0 { break }
                            off += w
                        }
                    }
                    close(c)
                }
            }
        }
    }

    func stop() {
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
        unlink(path)
    }
}
