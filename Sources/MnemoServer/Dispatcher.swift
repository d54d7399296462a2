#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import MnemoCore
import MnemoProtocol

/// A method's implementation: reads its params, applies them, writes its result object.
typealias Handler = @Sendable (_ params: Params, _ session: inout Session, _ out: inout JSONWriter) throws(WireError) -> Void

/// One entry of the method table.
struct Method: Sendable {
    /// Whether `session.hello` must have succeeded first.
    let requiresSession: Bool
    /// Whether it runs on a worker thread (SQLite or BLAS work), never on an event loop.
    var offLoop: Bool
    /// Whether it runs on a worker thread unless it may wait (`wait_ms` given): a parked
    /// call is answered by its event loop. Set for a cluster node's writes (see ``adapt``).
    var offLoopUnlessWaiting = false
    var handler: Handler
    /// Position in the table, where its statistics are kept.
    var index = 0
    /// What it needs from the caller's grants (from ``MethodRegistry``).
    var access = MethodAccess.handler

    init(requiresSession: Bool, offLoop: Bool = false, handler: @escaping Handler) {
        self.requiresSession = requiresSession
        self.offLoop = offLoop
        self.handler = handler
    }
}

/// Routes requests to handlers, enforces the hello-first rule and records statistics.
final class Dispatcher: Sendable {
    let engine: Engine
    let stats: MethodStats
    let status: ServerStatus
    let info: ServerInfo
    private let methods: [String: Method]

    init(engine: Engine, shards: Int, status: ServerStatus, info: ServerInfo, hub: WatchHub) {
        self.engine = engine
        self.status = status
        self.info = info
        // The statistics object is shared with admin.stats, which is itself in the table.
        let names = Dispatcher.methodNames
        let stats = MethodStats(names: names, shards: shards)
        self.stats = stats
        var table: [String: Method] = [:]
        for (name, var method) in Dispatcher.sessionMethods(engine: engine, info: info)
            + Dispatcher.adminMethods(engine: engine, stats: stats, status: status, hub: hub)
            + Dispatcher.workingMethods(engine: engine)
            + Dispatcher.coordinationMethods(engine: engine, status: status)
            + Dispatcher.watchMethods(engine: engine, hub: hub)
            + Dispatcher.semanticMethods(engine: engine)
            + Dispatcher.episodicMethods(engine: engine)
            + Dispatcher.auditMethods(engine: engine)
            + Dispatcher.transferMethods(engine: engine)
            + Dispatcher.agreementMethods(engine: engine, status: status)
        {
            guard let index = names.firstIndex(of: name) else { preconditionFailure("\(name) missing from methodNames") }
            method.index = index
            method.access = MethodRegistry.all[index].access
            table[name] = Dispatcher.adapt(name, method, engine: engine, status: status)
        }
        precondition(table.count == names.count, "methodNames and the handlers disagree")
        self.methods = table
    }

    /// Every method served, in the order statistics are kept (``MethodRegistry``).
    static let methodNames = MethodRegistry.all.map(\.name)

    /// Decodes one request line and writes its reply (nothing for notifications; one
    /// array for a batch). A call may park (see ``ParkedCall``) only when `canPark` and
    /// it is not inside a batch.
    func handle(line: UnsafeBufferPointer<UInt8>, session: inout Session, out: inout JSONWriter, shard: Int, canPark: Bool) {
        switch RPC.decode(line: line, maxDepth: engine.limits.maxDepth, maxBatch: engine.limits.maxBatch) {
        case .failure(let error):
            RPC.writeError(id: .null, error, &out)
        case .single(let item):
            session.canStream = true
            execute(item, session: &session, out: &out, shard: shard, canPark: canPark)
            session.canStream = false
        case .batch(let items):
            if canPark, session.caller != nil, runsOffLoop(items) {
                offload(batch: items, session: &session, shard: shard)
            } else {
                writeBatch(items, session: &session, out: &out, shard: shard)
            }
        }
    }

    /// Whether a batch goes to a worker thread as a whole: it holds an off-loop method
    /// (so the event loop must not run it) and nothing that changes the session.
    private func runsOffLoop(_ items: [RPCItem]) -> Bool {
        var offLoop = false
        for case .request(let r) in items {
            if Dispatcher.sessionChanging.contains(r.method) { return false }
            if methods[r.method]?.offLoop == true { offLoop = true }
        }
        return offLoop
    }

    /// Methods that change the connection's session, which a worker's copy cannot.
    static let sessionChanging: Set<String> = ["session.hello", "watch.subscribe", "watch.cancel"]

    /// Writes a batch's reply: one array, notifications left out, nothing at all when
    /// every member was a notification.
    func writeBatch(_ items: [RPCItem], session: inout Session, out: inout JSONWriter, shard: Int) {
        if session.caller != nil { session.prefetched = prefetchSearches(items, session) }
        defer {
            session.prefetched = [:]
            session.prefetchedUpserts = [:]
        }
        let mark = out.bytes.count
        out.byte(UInt8(ascii: "["))
        var wrote = false
        var upsertsPrefetchedThrough = -1
        for (i, item) in items.enumerated() {
            if i > upsertsPrefetchedThrough, session.caller != nil, case .request(let r) = item, r.method == "sem.upsert" {
                let budget = engine.limits.maxPendingOutputBytes - (out.bytes.count - mark)
                let (done, last) = prefetchUpserts(items, from: i, session: session, replyBudget: budget)
                session.prefetchedUpserts.merge(done) { $1 }
                upsertsPrefetchedThrough = last
            }
            let before = out.bytes.count
            if wrote { out.byte(UInt8(ascii: ",")) }
            let afterComma = out.bytes.count
            if out.bytes.count - mark > engine.limits.maxPendingOutputBytes {
                // The reply would exceed what a connection may have queued: the rest of
                // the batch is refused, not executed.
                if case .request(let r) = item, let id = r.id {
                    RPC.writeError(id: id, .limit("max_pending_output_bytes", max: engine.limits.maxPendingOutputBytes,
                                                  "batch reply too large; request not executed"), &out)
                } else if case .invalid(let id, let error) = item {
                    RPC.writeError(id: id, error, &out)
                }
            } else {
                // A batch is answered in one line, so its calls never wait (wait_ms acts as 0).
                session.batchIndex = i
                execute(item, session: &session, out: &out, shard: shard, canPark: false)
            }
            if out.bytes.count == afterComma {
                out.bytes.removeSubrange(before...)  // a notification: no reply
            } else {
                wrote = true
            }
        }
        if wrote {
            out.byte(UInt8(ascii: "]"))
        } else {
            out.bytes.removeSubrange(mark...)
        }
    }

    /// The batch's `sem.search` calls, run together (one pass over each collection for
    /// all of them, sgemm instead of one sgemv each), keyed by position in the batch;
    /// their handlers then only write the answers. Calls whose params are invalid are
    /// left to their handlers, which refuse them.
    private func prefetchSearches(_ items: [RPCItem], _ session: Session) -> [Int: Result<SemanticStore.SearchResult, WireError>] {
        var queries: [SemanticStore.Query] = []
        var positions: [Int] = []
        for (i, item) in items.enumerated() {
            guard case .request(let r) = item, r.method == "sem.search", r.id != nil,
                  var q = try? r.params.semanticQuery(limits: engine.limits)
            else { continue }
            q.visible = session.readable
            queries.append(q)
            positions.append(i)
        }
        guard queries.count > 1 else { return [:] }
        return Dictionary(uniqueKeysWithValues: zip(positions, engine.semantic.search(queries)))
    }

    /// The run of consecutive `sem.upsert` calls starting at `start`, written together:
    /// their texts embedded in one embedder call and all of them committed in one SQLite
    /// transaction (``SemanticStore/upsert(_:by:)-batch``), each keeping its own outcome
    /// and revision, in order; their handlers then only write the answers. The run is
    /// taken while its replies surely fit `replyBudget` (a call refused for the batch's
    /// reply size must not have been applied). Calls that the session may not make, or
    /// whose params are invalid, are left to their handlers, which refuse them.
    /// - Returns: outcomes by position, and the position of the last call looked at.
    /// - Complexity: one parse of each call's params, one batch upsert.
    private func prefetchUpserts(_ items: [RPCItem], from start: Int, session: Session, replyBudget: Int)
        -> ([Int: Result<SemanticStore.UpsertResult, WireError>], Int) {
        guard let caller = session.caller, let method = methods["sem.upsert"],
              !status.shuttingDown.load(ordering: .relaxed) else { return ([:], start) }
        var upserts: [SemanticStore.Upsert] = []
        var positions: [Int] = []
        var budget = replyBudget
        var end = start
        var copy = session
        while end < items.count, case .request(let r) = items[end], r.method == "sem.upsert" {
            if let u = try? r.params.semanticUpsert(limits: engine.limits), (try? authorize(method.access, r, &copy)) != nil {
                // The longest reply it can have: id and similar ids (256 bytes, escaped).
                let reply = 128 + 6 * (u.id?.utf8.count ?? 32) + (u.dedupe == .none ? 0 : 5 * (48 + 6 * 256))
                guard reply <= budget else { break }
                budget -= reply
                upserts.append(u)
                positions.append(end)
            }
            end += 1
        }
        // Calls scanned but not taken run one by one in their handlers.
        guard upserts.count > 1 else { return ([:], max(start, end - 1)) }
        let results = engine.semantic.upsert(upserts, by: caller)
        return (Dictionary(uniqueKeysWithValues: zip(positions, results)), end - 1)
    }

    private func execute(_ item: RPCItem, session: inout Session, out: inout JSONWriter, shard: Int, canPark: Bool) {
        switch item {
        case .invalid(let id, let error):
            RPC.writeError(id: id, error, &out)
        case .ignored:
            break
        case .request(let request):
            session.currentID = request.id ?? .null
            session.canPark = canPark && request.id != nil
            execute(request, session: &session, out: &out, shard: shard)
        }
    }

    /// Executes one request; writes its response into `out` unless it is a notification.
    func execute(_ request: RPCRequest, session: inout Session, out: inout JSONWriter, shard: Int) {
        let started = latencyClock()
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
            if method.requiresSession, let meter = session.meter { try meter.admit(nowNs: started) }
            try authorize(method.access, request, &session)
            if (method.offLoop || (method.offLoopUnlessWaiting && !request.params.has("wait_ms"))) && session.canPark {
                offload(method, request, session: &session, started: started, shard: shard)
                return
            }
            RPC.beginResult(id: id, &out)
            session.streamPreface = []
            try method.handler(request.params, &session, &out)
            if !session.streamPreface.isEmpty {
                // Notifications the handler streamed go out just before its response.
                out.bytes.insert(contentsOf: session.streamPreface, at: mark)
                session.streamPreface = []
            }
            if session.parked != nil {
                out.bytes.removeSubrange(mark...)  // answered later by the event loop
                stats.record(shard: shard, method: method.index, nanos: latencyClock() &- started, failed: false)
                return
            }
            RPC.endResult(&out)
            audit(method, request, session, reply: out.bytes[mark...], error: nil)
        } catch {
            failed = true
            session.streamPreface = []
            out.bytes.removeSubrange(mark...)
            RPC.writeError(id: id, error, &out)
            audit(method, request, session, reply: [], error: error)
        }
        if request.id == nil { out.bytes.removeSubrange(mark...) }
        stats.record(shard: shard, method: method.index, nanos: latencyClock() &- started, failed: failed)
    }
}

extension Dispatcher {
    /// Runs `method` on a worker thread; the event loop holds the connection's later
    /// replies (and lines) behind it. The handler gets a copy of the session: off-loop
    /// methods do not change it.
    private func offload(_ method: Method, _ request: RPCRequest, session: inout Session, started: UInt64, shard: Int) {
        let call = OffloadedCall()
        session.offloaded = call
        let copy = session
        let stats = self.stats
        Dispatcher.workers.async { [self] in
            var session = copy
            session.onWorker = true
            session.canPark = false
            var out = JSONWriter(capacity: 512)
            let id = request.id ?? .null
            var failed = false
            do throws(WireError) {
                RPC.beginResult(id: id, &out)
                try method.handler(request.params, &session, &out)
                RPC.endResult(&out)
                audit(method, request, session, reply: out.bytes[...], error: nil)
                if !session.streamPreface.isEmpty {
                    // Notifications the handler streamed go out just before its response.
                    out.bytes.insert(contentsOf: session.streamPreface, at: 0)
                }
            } catch {
                failed = true
                out.bytes.removeAll(keepingCapacity: true)
                RPC.writeError(id: id, error, &out)
                audit(method, request, session, reply: [], error: error)
            }
            out.byte(0x0A)
            stats.record(shard: shard, method: method.index, nanos: latencyClock() &- started, failed: failed)
            call.complete(out.bytes)
            copy.wake()
        }
    }

    /// Runs a whole batch on a worker thread (see ``runsOffLoop(_:)``).
    private func offload(batch items: [RPCItem], session: inout Session, shard: Int) {
        let call = OffloadedCall()
        session.offloaded = call
        let copy = session
        Dispatcher.workers.async { [self] in
            var session = copy
            var out = JSONWriter(capacity: 4096)
            writeBatch(items, session: &session, out: &out, shard: shard)
            if !out.bytes.isEmpty { out.byte(0x0A) }
            call.complete(out.bytes)
            copy.wake()
        }
    }

    /// The threads that run off-loop methods (see ``WorkerPool`` for why not GCD).
    static let workers = WorkerPool(name: "mnemo-worker", maxThreads: 256)
}

extension Dispatcher {
    /// Records mutations (allowed or refused with an application error) and every denial
    /// in the audit log. Calls refused as malformed (-32602 and the like) changed nothing
    /// and are not recorded.
    func audit(_ method: Method, _ request: RPCRequest, _ session: Session, reply: ArraySlice<UInt8>, error: WireError?) {
        let code = error?.appCode
        let denied = code == .forbidden || code == .unauthenticated
        guard denied || (method.access.isMutation && engine.audit.recordsMutations && (error == nil || code != nil)) else { return }
        let p = request.params
        let target = ["key", "resource", "task", "id", "to"].lazy.compactMap { p[$0]?.stringValue }.first
        engine.audit.record(AuditEntry(
            at: engine.time.nowMs(), principal: session.caller?.principal ?? "uid:\(session.peer.uid)",
            agent: session.caller?.agent, uid: session.peer.uid, pid: session.peer.pid, method: request.method,
            ns: p["ns"]?.stringValue, target: target, allowed: !denied, error: code?.rawValue,
            rev: error == nil ? Self.revision(in: reply) : nil))
    }

    /// The revision a write's reply reports: its first `"rev":` member, else `"version":`
    /// (sem.upsert), found by a scan of the reply's bytes (no parse).
    static func revision(in reply: ArraySlice<UInt8>) -> Int64? {
        for name in [Array(#""rev":"#.utf8), Array(#""version":"#.utf8)] {
            guard let at = firstIndex(of: name, in: reply) else { continue }
            var v: Int64 = 0
            var any = false
            for b in reply[(at + name.count)...] {
                guard b >= 0x30 && b <= 0x39 else { break }
                v = v &* 10 &+ Int64(b - 0x30)
                any = true
            }
            if any { return v }
        }
        return nil
    }
}

/// Where `needle` first occurs in `haystack` (a plain scan: replies are short).
private func firstIndex(of needle: [UInt8], in haystack: ArraySlice<UInt8>) -> Int? {
    guard let first = needle.first, haystack.count >= needle.count else { return nil }
    var i = haystack.startIndex
    let last = haystack.endIndex - needle.count
    while i <= last {
        if haystack[i] == first && haystack[i..<(i + needle.count)].elementsEqual(needle) { return i }
        i += 1
    }
    return nil
}

/// The monotonic clock for latency statistics (not the stores' injectable clock).
@inline(__always) func latencyClock() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}
