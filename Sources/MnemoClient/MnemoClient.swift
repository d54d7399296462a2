#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import MnemoProtocol
import Synchronization

/// Why a call did not return a result.
public enum ClientError: Error, Sendable, CustomStringConvertible {
    /// The socket could not be opened (daemon not running, wrong path, permissions).
    case connect(path: String, reason: String)
    /// The connection broke while sending or receiving.
    case io(String)
    /// The server sent something that is not a valid response.
    case badResponse(String)
    /// The server answered with an error; nothing was applied.
    case server(WireError)

    /// A message for a person.
    public var description: String {
        switch self {
        case .connect(let path, let reason): return "cannot connect to mnemod at \(path): \(reason)"
        case .io(let s): return "connection to mnemod failed: \(s)"
        case .badResponse(let s): return "unexpected response from mnemod: \(s)"
        case .server(let e): return e.description
        }
    }
}

/// A blocking client for one connection to `mnemod`, safe to share between threads
/// (calls are serialized). Requests can be pipelined with ``pipeline(_:)``; server
/// notifications (watch events) are queued and read with ``nextNotification()``.
public final class MnemoClient: Sendable {
    private struct State {
        var fd: Int32
        var nextID: Int64 = 1
        var buffer: [UInt8] = []
        var notifications: [JSON] = []
    }

    private let state: Mutex<State>
    /// The socket path connected to.
    public let socketPath: String

    /// Connects, and says `session.hello` when `agent` is given.
    public init(socketPath: String = SocketPath.fromEnvironment(), agent: String? = nil, token: String? = nil,
                client: String = "mnemo-swift") throws(ClientError) {
        self.socketPath = socketPath
        let fd: Int32
        switch UnixSocket.connect(socketPath) {
        case .success(let connected): fd = connected
        case .failure(let e): throw .connect(path: socketPath, reason: e.reason)
        }
        state = Mutex(State(fd: fd))
        if let agent {
            var params: [JSONMember] = [JSONMember("agent", .string(agent)), JSONMember("client", .string(client))]
            if let token { params.append(JSONMember("token", .string(token))) }
            _ = try call("session.hello", .object(params))
        }
    }

    deinit {
        state.withLock { s in
            if s.fd >= 0 { _ = Self.closeFD(s.fd) }
        }
    }

    /// Closes the connection; later calls fail with ``ClientError/io(_:)``.
    public func close() {
        state.withLock { s in
            if s.fd >= 0 { _ = Self.closeFD(s.fd) }
            s.fd = -1
        }
    }

    private static func closeFD(_ fd: Int32) -> Int32 {
        #if canImport(Glibc)
        return Glibc.close(fd)
        #else
        return Darwin.close(fd)
        #endif
    }

    /// Calls one method and returns its result.
    /// - Throws: ``ClientError/server(_:)`` with the wire error when the server refuses.
    public func call(_ method: String, _ params: JSON = .object([])) throws(ClientError) -> JSON {
        guard let only = try pipeline([(method, params)]).first else { throw .badResponse("no response") }
        return try only.get()
    }

    /// Sends several requests in one write and reads their responses, in order.
    public func pipeline(_ calls: [(String, JSON)]) throws(ClientError) -> [Result<JSON, ClientError>] {
        try state.withLock { s throws(ClientError) in
            guard s.fd >= 0 else { throw .io("connection closed") }
            var w = JSONWriter(capacity: 128 * calls.count)
            let firstID = s.nextID
            for (method, params) in calls {
                w.raw("{\"jsonrpc\":\"2.0\",\"id\":")
                w.int(s.nextID)
                w.raw(",\"method\":")
                w.string(method)
                w.raw(",\"params\":")
                w.value(params)
                w.raw("}\n")
                s.nextID += 1
            }
            try Self.send(s.fd, w.bytes)
            var results: [Result<JSON, ClientError>] = []
            results.reserveCapacity(calls.count)
            while results.count < calls.count {
                let message = try Self.readMessage(&s)
                if message["id"] == nil, message["method"] != nil {
                    s.notifications.append(message)
                    continue
                }
                guard let id = message["id"]?.int64Value, id == firstID + Int64(results.count) else {
                    // The replies can no longer be matched to the requests: give up the
                    // connection rather than hand later calls someone else's reply.
                    _ = Self.closeFD(s.fd)
                    s.fd = -1
                    if let error = message["error"].flatMap(WireError.init(json:)) { throw .server(error) }
                    throw .badResponse("response out of order: \(message.text)")
                }
                if let result = message["result"] {
                    results.append(.success(result))
                } else if let error = message["error"].flatMap(WireError.init(json:)) {
                    results.append(.failure(.server(error)))
                } else {
                    throw .badResponse(message.text)
                }
            }
            return results
        }
    }

    /// The next server notification, waiting up to `timeoutMs` (nil: none arrived).
    public func nextNotification(timeoutMs: Int32 = 1000) throws(ClientError) -> JSON? {
        try state.withLock { s throws(ClientError) in
            if !s.notifications.isEmpty { return s.notifications.removeFirst() }
            if s.buffer.contains(0x0A) { return try Self.readMessage(&s) }
            var pfd = pollfd(fd: s.fd, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, timeoutMs) > 0 else { return nil }
            return try Self.readMessage(&s)
        }
    }

    private static func send(_ fd: Int32, _ bytes: [UInt8]) throws(ClientError) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { buf in
                #if canImport(Glibc)
                Glibc.send(fd, buf.baseAddress! + offset, buf.count - offset, Int32(MSG_NOSIGNAL))
                #else
                Darwin.send(fd, buf.baseAddress! + offset, buf.count - offset, 0)
                #endif
            }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw .io("send: \(String(cString: strerror(errno)))") }
            offset += n
        }
    }

    private static func readMessage(_ s: inout State) throws(ClientError) -> JSON {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            if let nl = s.buffer.firstIndex(of: 0x0A) {
                let line = s.buffer[..<nl]
                defer { s.buffer.removeSubrange(...nl) }
                do {
                    return try JSONParser.parse(line, maxDepth: 512)
                } catch {
                    throw .badResponse("not JSON: \(error)")
                }
            }
            let n = chunk.withUnsafeMutableBytes { read(s.fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                throw .io(n == 0 ? "mnemod closed the connection" : "read: \(String(cString: strerror(errno)))")
            }
            s.buffer.append(contentsOf: chunk[0..<n])
        }
    }
}
