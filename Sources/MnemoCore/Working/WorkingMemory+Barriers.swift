import MnemoProtocol

extension WorkingMemory {
    /// Where a party stands after `barrier.arrive`.
    public struct BarrierView: Sendable, Equatable {
        public var generation: Int64
        /// `waiting` or `open` (a broken generation is the `BROKEN` error).
        public var state: Barrier.State
        public var parties: Int
        /// The generation's arrivals (all of them once it is open).
        public var arrivals: [BarrierArrival]
        /// When a waiting generation breaks (wall ms).
        public var deadline: Int64
        /// Monotonic time of that deadline, when a parked call should look again.
        public var retryAtNs: UInt64
    }

    /// Arrives at barrier `ns/name` as `caller`'s agent, for the current generation or, when
    /// `generation` is given, for that one: asking again about a generation that has ended
    /// answers its outcome instead of arriving at the next. Arriving twice is arriving once.
    /// When the generation is still waiting and `onEnd` is given, it is called once when the
    /// generation ends (registered in the same critical section).
    /// - Throws: `BROKEN` for a broken generation, `CONFLICT` for a generation that is
    ///   neither current nor kept, or `parties` different from the current generation's,
    ///   -32602 for bad input, `UNAVAILABLE` / `LIMIT_EXCEEDED` when it cannot be stored.
    public func arrive(ns: String, name: String, parties: Int, generation: Int64?, ttlMs: Int64, value: [UInt8],
                       by caller: Caller, onEnd: (@Sendable () -> Void)?) throws(WireError) -> (view: BarrierView, waiter: UInt64?) {
        try Validate.identifier(name, field: "name")
        guard (1...Limits.maxParties).contains(parties) else { throw .invalidParams("parties", "must be between 1 and \(Limits.maxParties)") }
        guard ttlMs >= 1, ttlMs <= limits.maxTTLms else { throw .invalidParams("ttl_ms", "must be between 1 and \(limits.maxTTLms)") }
        guard value.count <= Limits.maxAgreementValueBytes else {
            throw .invalidParams("value", "longer than \(Limits.maxAgreementValueBytes) bytes")
        }
        return try write { s throws(WireError) in
            let ck = ClaimKey(ns: ns, resource: name)
            var b = liveBarrier(&s, ck) ?? Barrier(parties: parties)
            if let generation, generation != b.generation {
                guard let ended = b.ended(generation) else {
                    throw .app(.conflict, "barrier \(name) is at generation \(b.generation); generation \(generation) is not kept",
                               [JSONMember("name", .string(name)), JSONMember("generation", .int(b.generation))])
                }
                return (try Self.view(ended, name), nil)
            }
            if !b.arrivals.contains(where: { $0.agent == caller.agent }) {
                if !b.arrivals.isEmpty, b.parties != parties {
                    throw .app(.conflict, "barrier \(name) generation \(b.generation) waits for \(b.parties) parties, not \(parties)",
                               [JSONMember("name", .string(name)), JSONMember("parties", .int(b.parties))])
                }
                if s.barriers[ck] == nil { try checkAgreementCount(s) }
                let now = time.nowMs()
                let rev = s.rev + 1
                b.parties = parties
                if b.arrivals.isEmpty { b.deadline = now + ttlMs }
                b.arrivals.append(BarrierArrival(agent: caller.agent, principal: caller.principal, value: value, at: now, rev: rev))
                let opened = b.arrivals.count == b.parties
                if opened { b.finish(.open, rev: rev, at: now) }
                let old = s.barriers[ck].map(Cost.barrier) ?? 0
                try reserve(&s, adding: Cost.barrier(b), freeing: old, by: caller.principal)
                if opened {
                    try commitEnding(&s, .barrier(ns: ns, name: name, b, rev: rev, event: "open"), WaitKey(.barrier, ck))
                    return (try Self.view(b.finished.last!, name), nil)
                }
                try commit(&s, .barrier(ns: ns, name: name, b, rev: rev, event: "arrive"))
            }
            let waiter = onEnd.map { addWaiter(WaitKey(.barrier, ck), $0) }
            return (BarrierView(generation: b.generation, state: .waiting, parties: b.parties, arrivals: b.arrivals,
                                deadline: b.deadline, retryAtNs: monoDeadline(b.deadline)), waiter)
        }
    }

    /// Barrier `ns/name` as it stands (a generation past its deadline is broken first).
    public func barrier(ns: String, name: String) -> Barrier? {
        state.withLock { s in liveBarrier(&s, ClaimKey(ns: ns, resource: name)) }
    }

    /// Barriers of exactly this namespace, by name.
    /// - Complexity: O(all barriers).
    public func barriers(ns: String) -> [(name: String, barrier: Barrier)] {
        state.withLock { s in
            s.barriers.keys.filter { $0.ns == ns }.sorted { $0.resource < $1.resource }.compactMap { ck in
                liveBarrier(&s, ck).map { (ck.resource, $0) }
            }
        }
    }

    // MARK: internals (lock held)

    /// The barrier, its current generation broken first when its deadline has passed.
    func liveBarrier(_ s: inout WorkingState, _ ck: ClaimKey) -> Barrier? {
        guard let b = s.barriers[ck] else { return nil }
        if b.deadline != 0, b.deadline <= time.nowMs() { _ = breakBarrier(&s, ck, b) }
        return s.barriers[ck]
    }

    /// Breaks the current generation of `b` and tells its waiters.
    func breakBarrier(_ s: inout WorkingState, _ ck: ClaimKey, _ b: Barrier) -> Bool {
        var b = b
        let rev = s.rev + 1
        b.finish(.broken, rev: rev, at: time.nowMs())
        return (try? commitEnding(&s, .barrier(ns: ck.ns, name: ck.resource, b, rev: rev, event: "break"), WaitKey(.barrier, ck))) != nil
    }

    /// Refuses a new barrier or proposal past `max_agreements`.
    func checkAgreementCount(_ s: WorkingState) throws(WireError) {
        let count = s.barriers.count + s.proposals.count
        guard count < limits.maxAgreements else {
            throw .limit("max_agreements", max: limits.maxAgreements, "\(count) barriers and proposals are kept")
        }
    }

    /// The monotonic time (ns) at which the wall-clock time `wallMs` comes.
    func monoDeadline(_ wallMs: Int64) -> UInt64 {
        time.monotonicNs() &+ UInt64(max(0, wallMs - time.nowMs())) * 1_000_000
    }

    static func view(_ f: Barrier.Finished, _ name: String) throws(WireError) -> BarrierView {
        guard f.state == .open else {
            throw .app(.broken, "barrier \(name) generation \(f.generation) broke: \(f.arrivals.count) of \(f.parties) parties arrived before its deadline",
                       [JSONMember("name", .string(name)), JSONMember("generation", .int(f.generation)),
                        JSONMember("arrived", .int(f.arrivals.count)), JSONMember("parties", .int(f.parties))])
        }
        return BarrierView(generation: f.generation, state: .open, parties: f.parties, arrivals: f.arrivals, deadline: 0, retryAtNs: 0)
    }
}
