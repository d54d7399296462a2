import MnemoCore
import MnemoProtocol

extension Dispatcher {
    static func coordinationMethods(engine: Engine, status: ServerStatus) -> [(String, Method)] {
        let wm = engine.working
        let limits = engine.limits
        return [
            ("claim.acquire", Method(requiresSession: true) { p, session, out throws(WireError) in
                try p.allowOnly(["ns", "resource", "ttl_ms", "wait_ms"])
                let ns = try p.namespace()
                let resource = try p.string("resource")
                let ttl = try p.int("ttl_ms", in: 1...limits.maxTTLms)
                let wait = try p.optionalInt("wait_ms", in: 0...3_600_000) ?? 0
                let caller = try session.callerOrThrow()
                try park(waitMs: wait, &session, engine, status, &out) { waiting, out throws(WireError) in
                    guard let outcome = try tryAcquire(wm, ns, resource, ttl, caller, value: nil, waiting) else { return false }
                    try writeAcquire(outcome, &out)
                    return true
                }
            }),
            ("claim.renew", Method(requiresSession: true) { p, session, out throws(WireError) in
                try p.allowOnly(["ns", "resource", "token", "ttl_ms"])
                let token = try p.int("token", in: 1...Int64.max)
                let expiresAt = try wm.renew(ns: try p.namespace(), resource: try p.string("resource"), token: token,
                                             ttlMs: try p.int("ttl_ms", in: 1...limits.maxTTLms), by: session.callerOrThrow())
                out.raw("{\"token\":")
                out.int(token)
                out.raw(",\"expires_at\":")
                Timestamp.write(expiresAt, to: &out)
                out.raw("}")
            }),
            ("claim.release", Method(requiresSession: true) { p, session, out throws(WireError) in
                try p.allowOnly(["ns", "resource", "token"])
                let released = try wm.release(ns: try p.namespace(), resource: try p.string("resource"),
                                              token: try p.int("token", in: 1...Int64.max), by: session.callerOrThrow())
                out.raw(released ? "{\"released\":true}" : "{\"released\":false}")
            }),
            ("claim.list", Method(requiresSession: true) { p, _, out throws(WireError) in
                try p.allowOnly(["ns"])
                out.raw("{\"claims\":[")
                for (i, c) in wm.claims(ns: try p.namespace()).enumerated() {
                    if i > 0 { out.raw(",") }
                    out.raw("{\"resource\":")
                    out.string(c.resource)
                    out.raw(",\"holder\":")
                    out.string(c.holder)
                    out.raw(",\"token\":")
                    out.int(c.token)
                    out.raw(",\"expires_at\":")
                    Timestamp.write(c.expiresAt, to: &out)
                    out.raw("}")
                }
                out.raw("]}")
            }),
            ("result.put", Method(requiresSession: true) { p, session, out throws(WireError) in
                try p.allowOnly(["ns", "task", "idempotency_key", "value"])
                let r = try wm.putResult(ns: try p.namespace(), task: try p.string("task"),
                                         idempotencyKey: try p.string("idempotency_key"), value: try p.any("value"),
                                         by: session.callerOrThrow())
                out.raw(r.stored ? "{\"stored\":true,\"value\":" : "{\"stored\":false,\"value\":")
                out.raw(r.result.value)
                out.raw(",\"provenance\":")
                r.result.provenance.write(to: &out)
                out.raw("}")
            }),
            ("task.transition", Method(requiresSession: true) { p, session, out throws(WireError) in
                try p.allowOnly(["ns", "task", "to", "from", "fence"])
                let r = try wm.transition(ns: try p.namespace(), task: try p.string("task"), to: try p.taskState("to"),
                                          from: try p.optionalString("from").map { s throws(WireError) in try taskState(s, "from") },
                                          fence: try p.claimRef("fence"), by: session.callerOrThrow())
                out.raw("{\"state\":")
                out.string(r.state.rawValue)
                out.raw(",\"rev\":")
                out.int(r.rev)
                out.raw("}")
            }),
            ("task.get", Method(requiresSession: true) { p, _, out throws(WireError) in
                try p.allowOnly(["ns", "task"])
                let task = try p.string("task")
                guard let t = wm.task(ns: try p.namespace(), task: task) else {
                    throw .app(.notFound, "no task \(task)", [JSONMember("task", .string(task))])
                }
                out.raw("{\"task\":")
                out.string(task)
                out.raw(",\"state\":")
                out.string(t.state.rawValue)
                out.raw(",\"rev\":")
                out.int(t.rev)
                out.raw(",\"history\":[")
                for (i, step) in t.history.enumerated() {
                    if i > 0 { out.raw(",") }
                    out.raw("{\"from\":")
                    if let from = step.from { out.string(from.rawValue) } else { out.raw("null") }
                    out.raw(",\"to\":")
                    out.string(step.to.rawValue)
                    out.raw(",\"rev\":")
                    out.int(step.provenance.rev)
                    out.raw(",\"at\":")
                    Timestamp.write(step.provenance.at, to: &out)
                    out.raw(",\"provenance\":")
                    step.provenance.write(to: &out)
                    out.raw("}")
                }
                out.raw("]}")
            }),
            ("inbox.post", Method(requiresSession: true) { p, session, out throws(WireError) in
                try p.allowOnly(["ns", "to", "type", "content"])
                let r = try wm.post(ns: try p.namespace(), to: try p.string("to"), type: try p.string("type"),
                                    content: try p.any("content"), by: session.callerOrThrow())
                out.raw("{\"id\":")
                out.string(r.id)
                out.raw(",\"rev\":")
                out.int(r.rev)
                out.raw("}")
            }),
            ("inbox.read", Method(requiresSession: true) { p, session, out throws(WireError) in
                try p.allowOnly(["ns", "unacked_only", "limit"])
                let entries = wm.inbox(ns: try p.namespace(), for: try session.callerOrThrow(),
                                       unackedOnly: try p.optionalBool("unacked_only") ?? true,
                                       limit: Int(try p.optionalInt("limit", in: 1...Int64(limits.maxListLimit)) ?? 100))
                out.raw("{\"entries\":[")
                for (i, e) in entries.enumerated() {
                    if i > 0 { out.raw(",") }
                    out.raw("{\"id\":")
                    out.string(e.id)
                    out.raw(",\"from\":")
                    out.string(e.from)
                    out.raw(",\"to\":")
                    out.string(e.to)
                    out.raw(",\"type\":")
                    out.string(e.type)
                    out.raw(",\"content\":")
                    out.raw(e.content)
                    out.raw(",\"at\":")
                    Timestamp.write(e.provenance.at, to: &out)
                    out.raw(e.acked ? ",\"acked\":true}" : ",\"acked\":false}")
                }
                out.raw("]}")
            }),
            ("inbox.ack", Method(requiresSession: true) { p, session, out throws(WireError) in
                try p.allowOnly(["ns", "ids"])
                guard let raw = try p.optionalArray("ids"), !raw.isEmpty, raw.count <= limits.maxListLimit else {
                    throw .invalidParams("ids", "required: 1 to \(limits.maxListLimit) ids")
                }
                var ids: [String] = []
                for v in raw {
                    guard let s = v.stringValue else { throw .invalidParams("ids", "must be an array of strings") }
                    ids.append(s)
                }
                let n = try wm.ack(ns: try p.namespace(), ids: ids, by: session.callerOrThrow())
                out.raw("{\"acked\":")
                out.int(n)
                out.raw("}")
            }),
        ]
    }

    /// Writes a `claim.acquire` result, or throws `CLAIMED`.
    /// Answers now, or parks the call (`wait_ms` above 0, on a connection that can wait)
    /// for the event loop to answer when `attempt` does.
    static func park(waitMs: Int64, _ session: inout Session, _ engine: Engine, _ status: ServerStatus, _ out: inout JSONWriter,
                     _ attempt: @escaping ParkedCall.Attempt) throws(WireError) {
        guard waitMs > 0, session.canPark else {
            _ = try attempt(nil, &out)
            return
        }
        let call = ParkedCall(id: session.currentID, deadlineNs: engine.time.monotonicNs() + UInt64(waitMs) * 1_000_000,
                              wake: session.wake, gauge: status, attempt)
        if try call.attempt(last: false, &out) { return }
        session.parked = call
    }

    /// One try at a claim (a leader's when `value` is given) for a call that may wait: the
    /// outcome to answer, or nil when it waits (`waiting` registered for the claim's end).
    static func tryAcquire(_ wm: WorkingMemory, _ ns: String, _ resource: String, _ ttl: Int64, _ caller: Caller,
                           value: [UInt8]?, _ waiting: ParkedCall?) throws(WireError) -> WorkingMemory.AcquireOutcome? {
        let (outcome, waiter) = try wm.acquire(ns: ns, resource: resource, ttlMs: ttl, by: caller, value: value,
                                               reentrant: value != nil, onEnd: waiting?.onEnd)
        if case .held(_, _, let retryAt) = outcome, let waiting {
            waiting.wait(until: retryAt, key: WaitKey(.claim, ns: ns, name: resource), id: waiter)
            return nil
        }
        return outcome
    }

    static func writeAcquire(_ outcome: WorkingMemory.AcquireOutcome, _ out: inout JSONWriter) throws(WireError) {
        switch outcome {
        case .granted(let token, let expiresAt):
            out.raw("{\"granted\":true,\"token\":")
            out.int(token)
            out.raw(",\"expires_at\":")
            Timestamp.write(expiresAt, to: &out)
            out.raw("}")
        case .held(let holder, let expiresAt, _):
            throw .app(.claimed, "claimed by \(holder)",
                       [JSONMember("holder", .string(holder)), JSONMember("expires_at", .string(Timestamp.format(expiresAt)))])
        }
    }
}

private func taskState(_ s: String, _ field: String) throws(WireError) -> TaskState {
    guard let state = TaskState(rawValue: s) else {
        throw .invalidParams(field, "must be one of \(TaskState.allCases.map(\.rawValue).joined(separator: ", "))")
    }
    return state
}

extension Params {
    func taskState(_ key: String) throws(WireError) -> TaskState {
        try MnemoServer.taskState(try string(key), key)
    }
}
