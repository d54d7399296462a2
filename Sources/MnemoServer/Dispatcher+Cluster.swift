import MnemoCore
import MnemoProtocol

/// How a cluster node serves methods differently: reads that name how fresh they must be,
/// writes on worker threads, and the methods a cluster node does not serve.
///
/// A working-memory read may carry `min_rev` (answer once this node has applied that
/// revision) or `consistency: "linearizable"` (answer once it has applied the cluster's
/// revision as PostgreSQL has it now). On a cluster node the call waits, parked like a
/// `claim.acquire` with `wait_ms`, at most `[cluster] max_wait_ms`, then is `UNAVAILABLE`;
/// in a batch it does not wait. On a single node every revision issued is applied, so
/// only a `min_rev` never issued is `UNAVAILABLE` (at once).
extension Dispatcher {
    /// `method` as this engine serves it: refused on a cluster node when it is single-node
    /// only; taking `min_rev`/`consistency` when it is a read; on a worker when it is a
    /// cluster node's write.
    static func adapt(_ name: String, _ method: Method, engine: Engine, status: ServerStatus) -> Method {
        var method = method
        let inner = method.handler
        let role = MethodRegistry.byName[name]?.cluster ?? .same
        if engine.cluster != nil, role == .write { method.offLoopUnlessWaiting = true }
        if engine.cluster != nil, role == .singleNodeOnly {
            method.handler = { _, _, _ throws(WireError) in
                throw WireError(code: -32601, message: "\(name) is not served by a cluster node: it replaces or copies one node's files, not the cluster's state (export from a node, import into a single node)",
                                data: [JSONMember("method", .string(name)), JSONMember("reason", .string("cluster"))])
            }
        } else if role == .freshRead {
            method.handler = { p, session, out throws(WireError) in
                guard p.has("min_rev") || p.has("consistency") else { return try inner(p, &session, &out) }
                let target = try freshnessTarget(p, engine)
                let rest = Params(p.members.filter { $0.key != "min_rev" && $0.key != "consistency" }, path: p.path)
                try awaitRevision(target, engine, status, &session, &out) { session, out throws(WireError) in
                    try inner(rest, &session, &out)
                }
            }
        }
        return method
    }

    /// The revision a read must see: its `min_rev`, or the cluster's current one for a
    /// linearizable read, whichever is higher.
    private static func freshnessTarget(_ p: Params, _ engine: Engine) throws(WireError) -> Int64 {
        var target = try p.optionalInt("min_rev", in: 0...Int64.max) ?? 0
        switch try p.optionalString("consistency") {
        case nil, "local": break
        case "linearizable":
            if let cluster = engine.cluster { target = max(target, try cluster.currentRevision()) }
        default: throw .invalidParams("consistency", "must be local or linearizable")
        }
        return target
    }

    /// Runs `read` once this node has applied `target`, parking the call meanwhile.
    private static func awaitRevision(_ target: Int64, _ engine: Engine, _ status: ServerStatus, _ session: inout Session,
                                      _ out: inout JSONWriter,
                                      _ read: @escaping @Sendable (inout Session, inout JSONWriter) throws(WireError) -> Void) throws(WireError) {
        if engine.revision >= target { return try read(&session, &out) }
        guard let cluster = engine.cluster else {
            throw notReached(target, engine, "this node has not issued it")
        }
        if session.onWorker {
            // A read that runs on a worker thread (a search) waits there.
            guard engine.working.awaitRevision(target, timeoutMs: cluster.settings.maxWaitMs) else {
                throw notReached(target, engine, "not applied within \(cluster.settings.maxWaitMs) ms")
            }
            return try read(&session, &out)
        }
        let copy = session
        try park(waitMs: Int64(cluster.settings.maxWaitMs), &session, engine, status, &out) { waiting, out throws(WireError) in
            var session = copy
            if let waiting {
                // Registered before looking, so an advance in between still wakes it.
                let id = engine.working.onRevision(waiting.onEnd)
                if engine.revision < target {
                    waiting.wait(until: waiting.deadlineNs, key: .revision, id: id)
                    return false
                }
                engine.working.cancelWait(.revision, id: id)
            }
            guard engine.revision >= target else {
                throw notReached(target, engine, "not applied within \(cluster.settings.maxWaitMs) ms")
            }
            try read(&session, &out)
            return true
        }
    }

    private static func notReached(_ target: Int64, _ engine: Engine, _ why: String) -> WireError {
        .app(.unavailable, "revision \(target) not reached: \(why) (this node is at \(engine.revision))",
             [JSONMember("min_rev", .int(target)), JSONMember("rev", .int(engine.revision))])
    }
}
