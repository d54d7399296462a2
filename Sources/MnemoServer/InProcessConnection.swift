#if canImport(Glibc)
import Glibc
#endif
import MnemoCore
import MnemoProtocol

/// A connection to an engine without a socket: request lines in, reply lines out, through
/// exactly the code a socket connection runs (decoding, limits, dispatch, handlers).
/// For micro benchmarks and fuzzing; calls never park (`wait_ms` acts as 0) and watches
/// deliver nothing.
public final class InProcessConnection {
    private let dispatcher: Dispatcher
    private var session: Session
    private var out = JSONWriter(capacity: 4096)

    /// A connection to `engine`, as this process's own uid/gid/pid.
    public init(engine: Engine) {
        let hub = WatchHub(capacity: 0, currentRev: engine.revision) { _, _ in }
        dispatcher = Dispatcher(engine: engine, shards: 1, status: ServerStatus(),
                                info: ServerInfo(socketPath: "(in-process)", limits: engine.limits), hub: hub)
        session = Session(peer: PeerCredentials(pid: getpid(), uid: getuid(), gid: getgid()),
                          connection: WatchHub.ConnectionRef(loop: 0, id: 0), wake: {})
    }

    deinit { session.meter?.closeConnection() }

    /// Handles one line (without its `\n`); returns the reply line (without `\n`), empty
    /// for a notification.
    public func handle(_ line: UnsafeBufferPointer<UInt8>) -> ArraySlice<UInt8> {
        out.bytes.removeAll(keepingCapacity: true)
        dispatcher.handle(line: line, session: &session, out: &out, shard: 0, canPark: false)
        return out.bytes[...]
    }

    /// Handles one line given as bytes.
    public func handle(_ line: [UInt8]) -> ArraySlice<UInt8> {
        line.withUnsafeBufferPointer { handle($0) }
    }
}
