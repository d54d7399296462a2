import MnemoCore
import MnemoProtocol

/// A method's implementation: reads its params, applies them, writes its result object.
typealias Handler = @Sendable (_ params: Params, _ session: inout Session, _ out: inout JSONWriter) throws(WireError) -> Void

/// One entry of the method table.
struct Method: Sendable {
    /// Whether `session.hello` must have succeeded first.
    let requiresSession: Bool
    let handler: Handler
}

/// Routes requests to handlers, enforces the hello-first rule and records statistics.
final class Dispatcher: Sendable {
    let engine: Engine
    let stats: MethodStats
    let status: ServerStatus
    let info: ServerInfo
    private let methods: [String: Method]

    init(engine: Engine, stats: MethodStats, status: ServerStatus, info: ServerInfo, hub: WatchHub) {
        self.engine = engine
        self.stats = stats
        self.status = status
        self.info = info
        var table: [String: Method] = [:]
        for (name, method) in Dispatcher.sessionMethods(engine: engine, info: info)
            + Dispatcher.adminMethods(engine: engine, stats: stats, status: status, hub: hub)
            + Dispatcher.workingMethods(engine: engine)
            + Dispatcher.coordinationMethods(engine: engine)
            + Dispatcher.watchMethods(engine: engine, hub: hub)
        {
            table[name] = method
        }
        self.methods = table
    }

    /// Every method name served.
    var methodNames: [String] { methods.keys.sorted() }

    /// Executes one request; writes its response into `out` unless it is a notification.
    func execute(_ request: RPCRequest, session: inout Session, out: inout JSONWriter, shard: Int) {
        let started = engine.time.monotonicNs()
        let mark = out.bytes.count
        let id = request.id ?? .null
        guard let method = methods[request.method] else {
            if request.id != nil { RPC.writeError(id: id, .methodNotFound(request.method), &out) }
            return
        }
        var failed = false
        do throws(WireError) {
            if method.requiresSession && session.caller == nil {
                throw .app(.unauthenticated, "call session.hello first")
            }
            if status.shuttingDown.load(ordering: .relaxed) && method.requiresSession {
                throw .app(.shuttingDown, "mnemod is shutting down")
            }
            RPC.beginResult(id: id, &out)
            try method.handler(request.params, &session, &out)
            if session.parked != nil {
                out.bytes.removeSubrange(mark...)  // answered later by the event loop
                return
            }
            RPC.endResult(&out)
        } catch {
            failed = true
            out.bytes.removeSubrange(mark...)
            RPC.writeError(id: id, error, &out)
        }
        if request.id == nil { out.bytes.removeSubrange(mark...) }
        stats.record(shard: shard, method: request.method, nanos: engine.time.monotonicNs() - started, failed: failed)
    }
}
