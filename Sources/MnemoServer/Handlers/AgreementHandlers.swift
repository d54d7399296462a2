import MnemoCore
import MnemoProtocol
import Synchronization

/// Barriers, votes and leader election: agreement between agents before they act.
extension Dispatcher {
    static func agreementMethods(engine: Engine, status: ServerStatus) -> [(String, Method)] {
        let wm = engine.working
        let limits = engine.limits
        return [
            ("barrier.arrive", Method(requiresSession: true) { p, session, out throws(WireError) in
                try p.allowOnly(["ns", "name", "parties", "generation", "ttl_ms", "wait_ms", "value"])
                let ns = try p.namespace()
                let name = try p.string("name")
                let parties = Int(try p.int("parties", in: 1...Int64(Limits.maxParties)))
                let generation = try p.optionalInt("generation", in: 1...Int64.max)
                let ttl = try p.optionalInt("ttl_ms", in: 1...limits.maxTTLms) ?? 600_000
                let wait = try p.optionalInt("wait_ms", in: 0...3_600_000) ?? 0
                let value = p.has("value") ? try p.any("value").bytes : Array("null".utf8)
                let caller = try session.callerOrThrow()
                // The first try arrives; a parked call asks again about the generation it joined.
                let joined = GenerationBox(generation ?? 0)
                try park(waitMs: wait, &session, engine, status, &out) { waiting, out throws(WireError) in
                    let (view, waiter) = try wm.arrive(ns: ns, name: name, parties: parties, generation: joined.value,
                                                       ttlMs: ttl, value: value, by: caller, onEnd: waiting?.onEnd)
                    joined.set(view.generation)
                    if view.state == .waiting, let waiting {
                        waiting.wait(until: view.retryAtNs, key: WaitKey(.barrier, ns: ns, name: name), id: waiter)
                        return false
                    }
                    writeBarrier(name, view.generation, view.state, view.parties, view.arrivals, deadline: view.deadline, &out)
                    out.raw("}")
                    return true
                }
            }),
            ("barrier.get", Method(requiresSession: true) { p, _, out throws(WireError) in
                try p.allowOnly(["ns", "name"])
                let name = try p.string("name")
                guard let b = wm.barrier(ns: try p.namespace(), name: name) else {
                    throw .app(.notFound, "no barrier \(name)", [JSONMember("name", .string(name))])
                }
                writeBarrier(name, b.generation, .waiting, b.parties, b.arrivals, deadline: b.deadline, &out)
                out.raw(",\"last\":")
                if let f = b.finished.last {
                    writeBarrier(nil, f.generation, f.state, f.parties, f.arrivals, deadline: 0, &out)
                    out.raw(",\"ended_at\":")
                    Timestamp.write(f.at, to: &out)
                    out.raw("}")
                } else {
                    out.raw("null")
                }
                out.raw("}")
            }),
            ("barrier.list", Method(requiresSession: true) { p, _, out throws(WireError) in
                try p.allowOnly(["ns"])
                out.raw("{\"barriers\":[")
                for (i, (name, b)) in wm.barriers(ns: try p.namespace()).enumerated() {
                    if i > 0 { out.raw(",") }
                    out.raw("{\"name\":")
                    out.string(name)
                    out.raw(",\"generation\":")
                    out.int(b.generation)
                    out.raw(",\"parties\":")
                    out.int(b.parties)
                    out.raw(",\"arrived\":")
                    out.int(b.arrivals.count)
                    out.raw(",\"deadline\":")
                    writeDeadline(b.deadline, &out)
                    out.raw("}")
                }
                out.raw("]}")
            }),
            ("vote.open", Method(requiresSession: true) { p, session, out throws(WireError) in
                try p.allowOnly(["ns", "proposal", "voters", "quorum", "ttl_ms", "payload"])
                var voters: [String]?
                if let list = try p.optionalArray("voters") {
                    voters = try list.map { v throws(WireError) in
                        guard let s = v.stringValue else { throw .invalidParams(p.name("voters"), "must be agent names") }
                        return s
                    }
                }
                let proposal = try p.string("proposal")
                let opened = try wm.openVote(ns: try p.namespace(), proposal: proposal, voters: voters,
                                             quorum: try p.optionalInt("quorum", in: 1...Int64(Limits.maxParties)).map { Int($0) },
                                             ttlMs: try p.optionalInt("ttl_ms", in: 1...limits.maxTTLms) ?? 600_000,
                                             payload: p.has("payload") ? try p.any("payload").bytes : Array("null".utf8),
                                             by: session.callerOrThrow())
                writeProposal(proposal, opened, &out)
            }),
            ("vote.cast", Method(requiresSession: true) { p, session, out throws(WireError) in
                try p.allowOnly(["ns", "proposal", "choice", "reason"])
                let choice = try p.string("choice")
                guard choice == "yes" || choice == "no" else { throw .invalidParams(p.name("choice"), "must be \"yes\" or \"no\"") }
                let proposal = try p.string("proposal")
                let cast = try wm.castVote(ns: try p.namespace(), proposal: proposal, yes: choice == "yes",
                                           reason: try p.optionalString("reason"), by: session.callerOrThrow())
                writeProposal(proposal, cast, &out)
            }),
            ("vote.get", Method(requiresSession: true) { p, session, out throws(WireError) in
                try p.allowOnly(["ns", "proposal", "wait_ms"])
                let ns = try p.namespace()
                let proposal = try p.string("proposal")
                let wait = try p.optionalInt("wait_ms", in: 0...3_600_000) ?? 0
                try park(waitMs: wait, &session, engine, status, &out) { waiting, out throws(WireError) in
                    let (found, waiter) = wm.proposal(ns: ns, name: proposal, onEnd: waiting?.onEnd)
                    guard let found else {
                        throw .app(.notFound, "no proposal \(proposal)", [JSONMember("proposal", .string(proposal))])
                    }
                    if found.status == .open, let waiting {
                        waiting.wait(until: wm.retryAt(found), key: WaitKey(.proposal, ns: ns, name: proposal), id: waiter)
                        return false
                    }
                    writeProposal(proposal, found, &out)
                    return true
                }
            }),
            ("leader.campaign", Method(requiresSession: true) { p, session, out throws(WireError) in
                try p.allowOnly(["ns", "election", "ttl_ms", "value", "wait_ms"])
                let ns = try p.namespace()
                let election = try p.string("election")
                let ttl = try p.int("ttl_ms", in: 1...limits.maxTTLms)
                let wait = try p.optionalInt("wait_ms", in: 0...3_600_000) ?? 0
                let value = p.has("value") ? try p.any("value").bytes : Array("null".utf8)
                guard value.count <= Limits.maxAgreementValueBytes else {
                    throw .invalidParams(p.name("value"), "longer than \(Limits.maxAgreementValueBytes) bytes")
                }
                let caller = try session.callerOrThrow()
                try park(waitMs: wait, &session, engine, status, &out) { waiting, out throws(WireError) in
                    guard let outcome = try tryAcquire(wm, ns, election, ttl, caller, value: value, waiting) else { return false }
                    switch outcome {
                    case .granted(let token, let expiresAt):
                        out.raw("{\"leader\":true,\"token\":")
                        out.int(token)
                        out.raw(",\"expires_at\":")
                        Timestamp.write(expiresAt, to: &out)
                    case .held(let holder, let expiresAt, _):
                        out.raw("{\"leader\":false,\"holder\":")
                        out.string(holder)
                        out.raw(",\"expires_at\":")
                        Timestamp.write(expiresAt, to: &out)
                    }
                    out.raw("}")
                    return true
                }
            }),
            ("leader.get", Method(requiresSession: true) { p, _, out throws(WireError) in
                try p.allowOnly(["ns", "election"])
                let election = try p.string("election")
                out.raw("{\"election\":")
                out.string(election)
                guard let c = wm.claim(ns: try p.namespace(), resource: election) else {
                    out.raw(",\"leader\":null}")
                    return
                }
                out.raw(",\"leader\":")
                out.string(c.holder)
                out.raw(",\"token\":")
                out.int(c.token)
                out.raw(",\"since\":")
                if c.since != 0 { Timestamp.write(c.since, to: &out) } else { out.raw("null") }
                out.raw(",\"expires_at\":")
                Timestamp.write(c.expiresAt, to: &out)
                out.raw(",\"value\":")
                out.raw(c.value ?? Array("null".utf8))
                out.raw("}")
            }),
            ("leader.resign", Method(requiresSession: true) { p, session, out throws(WireError) in
                try p.allowOnly(["ns", "election", "token"])
                let resigned = try wm.release(ns: try p.namespace(), resource: try p.string("election"),
                                              token: try p.int("token", in: 1...Int64.max), by: session.callerOrThrow())
                out.raw(resigned ? "{\"resigned\":true}" : "{\"resigned\":false}")
            }),
        ]
    }

    /// A generation, without its closing brace (`name` nil inside `last`).
    static func writeBarrier(_ name: String?, _ generation: Int64, _ state: Barrier.State, _ parties: Int,
                             _ arrivals: [BarrierArrival], deadline: Int64, _ out: inout JSONWriter) {
        out.raw("{")
        if let name {
            out.raw("\"name\":")
            out.string(name)
            out.raw(",")
        }
        out.raw("\"generation\":")
        out.int(generation)
        out.raw(",\"state\":")
        out.string(state.rawValue)
        out.raw(",\"parties\":")
        out.int(parties)
        out.raw(",\"arrived\":")
        out.int(arrivals.count)
        out.raw(",\"arrivals\":[")
        for (i, a) in arrivals.enumerated() {
            if i > 0 { out.raw(",") }
            out.raw("{\"agent\":")
            out.string(a.agent)
            out.raw(",\"value\":")
            out.raw(a.value)
            out.raw(",\"at\":")
            Timestamp.write(a.at, to: &out)
            out.raw("}")
        }
        out.raw("],\"deadline\":")
        writeDeadline(deadline, &out)
    }

    static func writeDeadline(_ deadline: Int64, _ out: inout JSONWriter) {
        if deadline != 0 { Timestamp.write(deadline, to: &out) } else { out.raw("null") }
    }

    static func writeProposal(_ name: String, _ p: Proposal, _ out: inout JSONWriter) {
        let (yes, no) = p.tally
        out.raw("{\"proposal\":")
        out.string(name)
        out.raw(",\"round\":")
        out.int(p.round)
        out.raw(",\"status\":")
        out.string(p.status.rawValue)
        out.raw(",\"quorum\":")
        out.int(p.quorum)
        out.raw(",\"voters\":")
        if let voters = p.voters { out.value(.array(voters.map(JSON.string))) } else { out.raw("null") }
        out.raw(",\"yes\":")
        out.int(yes)
        out.raw(",\"no\":")
        out.int(no)
        out.raw(",\"votes\":[")
        for (i, b) in p.ballots.enumerated() {
            if i > 0 { out.raw(",") }
            out.raw("{\"voter\":")
            out.string(b.voter)
            out.raw(b.yes ? ",\"choice\":\"yes\"" : ",\"choice\":\"no\"")
            out.raw(",\"reason\":")
            if let reason = b.reason { out.string(reason) } else { out.raw("null") }
            out.raw(",\"at\":")
            Timestamp.write(b.at, to: &out)
            out.raw("}")
        }
        out.raw("],\"payload\":")
        out.raw(p.payload)
        out.raw(",\"opened_by\":")
        out.string(p.openedBy)
        out.raw(",\"opened_at\":")
        Timestamp.write(p.openedAt, to: &out)
        out.raw(",\"deadline\":")
        Timestamp.write(p.deadline, to: &out)
        out.raw(",\"decided_at\":")
        if let at = p.decidedAt { Timestamp.write(at, to: &out) } else { out.raw("null") }
        out.raw(",\"token\":")
        if let token = p.authority { out.int(token) } else { out.raw("null") }
        out.raw("}")
    }
}

/// The generation a parked `barrier.arrive` joined (0: none yet).
private final class GenerationBox: Sendable {
    private let g: Atomic<Int64>
    init(_ g: Int64) { self.g = Atomic(g) }
    var value: Int64? { let v = g.load(ordering: .relaxed); return v == 0 ? nil : v }
    func set(_ v: Int64) { g.store(v, ordering: .relaxed) }
}
