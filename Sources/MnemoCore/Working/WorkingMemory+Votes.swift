import MnemoProtocol

extension WorkingMemory {
    /// Opens a round of proposal `ns/proposal`: its first, or the next once the last one
    /// was decided. Opening the same open round again with the same terms is a retry and
    /// answers it unchanged.
    /// - Parameters:
    ///   - voters: the agents whose votes count (nil: any agent that may write here).
    ///   - quorum: yes votes that accept it (default: every listed voter).
    /// - Throws: `CONFLICT` when a round with other terms is open; -32602 for bad input.
    public func openVote(ns: String, proposal: String, voters: [String]?, quorum: Int?, ttlMs: Int64, payload: [UInt8],
                         by caller: Caller) throws(WireError) -> Proposal {
        try Validate.identifier(proposal, field: "proposal")
        guard ttlMs >= 1, ttlMs <= limits.maxTTLms else { throw .invalidParams("ttl_ms", "must be between 1 and \(limits.maxTTLms)") }
        guard payload.count <= Limits.maxAgreementValueBytes else {
            throw .invalidParams("payload", "longer than \(Limits.maxAgreementValueBytes) bytes")
        }
        var list: [String]?
        if let voters {
            guard (1...Limits.maxParties).contains(voters.count) else {
                throw .invalidParams("voters", "must list between 1 and \(Limits.maxParties) agents")
            }
            for v in voters { try Validate.agent(v, field: "voters") }
            list = Array(Set(voters)).sorted()
            guard list!.count == voters.count else { throw .invalidParams("voters", "lists an agent twice") }
        }
        guard let q = quorum ?? list?.count else { throw .invalidParams("quorum", "is required without a voter list") }
        guard q >= 1, q <= (list?.count ?? Limits.maxParties) else {
            throw .invalidParams("quorum", "must be between 1 and \(list?.count ?? Limits.maxParties)")
        }
        return try write { s throws(WireError) in
            let ck = ClaimKey(ns: ns, resource: proposal)
            let old = liveProposal(&s, ck)
            if let old, old.status == .open {
                guard old.voters == list, old.quorum == q, old.payload == payload, old.openedBy == caller.agent else {
                    throw .app(.conflict, "proposal \(proposal) round \(old.round) is open with other terms",
                               [JSONMember("proposal", .string(proposal)), JSONMember("round", .int(old.round))])
                }
                return old
            }
            if old == nil { try checkAgreementCount(s) }
            let now = time.nowMs()
            let rev = s.rev + 1
            var p = Proposal(round: (old?.round ?? 0) + 1, voters: list, quorum: q, payload: payload, openedBy: caller.agent,
                             openedPrincipal: caller.principal, openedAt: now, openedRev: rev, deadline: now + ttlMs)
            p.authority = old?.authority  // the last acceptance holds until this round is decided
            try reserve(&s, adding: Cost.proposal(p), freeing: old.map(Cost.proposal) ?? 0, by: caller.principal)
            try commit(&s, .proposal(ns: ns, name: proposal, p, rev: rev, event: "open"))
            return p
        }
    }

    /// Casts `caller`'s vote in the open round of `ns/proposal`. The vote that makes the
    /// outcome certain decides the round; its revision is the decision's token. Casting
    /// the same vote again answers the round as it stands.
    /// - Throws: `NOT_FOUND` (no such proposal), `FORBIDDEN` (not a listed voter),
    ///   `CONFLICT` (a different vote already cast, or the round decided without this vote).
    public func castVote(ns: String, proposal: String, yes: Bool, reason: String?, by caller: Caller) throws(WireError) -> Proposal {
        try Validate.identifier(proposal, field: "proposal")
        if let reason, reason.utf8.count > Limits.maxAgreementValueBytes {
            throw .invalidParams("reason", "longer than \(Limits.maxAgreementValueBytes) bytes")
        }
        return try write { s throws(WireError) in
            let ck = ClaimKey(ns: ns, resource: proposal)
            guard var p = liveProposal(&s, ck) else {
                throw .app(.notFound, "no proposal \(proposal)", [JSONMember("proposal", .string(proposal))])
            }
            if let voters = p.voters, !voters.contains(caller.agent) {
                throw .app(.forbidden, "\(caller.agent) is not a voter of proposal \(proposal)",
                           [JSONMember("proposal", .string(proposal)), JSONMember("agent", .string(caller.agent))])
            }
            if let mine = p.ballots.first(where: { $0.voter == caller.agent }) {
                guard mine.yes == yes else {
                    throw .app(.conflict, "\(caller.agent) already voted \(mine.yes ? "yes" : "no") in round \(p.round) of \(proposal)",
                               [JSONMember("proposal", .string(proposal)), JSONMember("round", .int(p.round)),
                                JSONMember("choice", .string(mine.yes ? "yes" : "no"))])
                }
                return p
            }
            guard p.status == .open else {
                throw .app(.conflict, "round \(p.round) of \(proposal) is decided: \(p.status.rawValue)",
                           [JSONMember("proposal", .string(proposal)), JSONMember("round", .int(p.round)),
                            JSONMember("status", .string(p.status.rawValue))])
            }
            let now = time.nowMs()
            let rev = s.rev + 1
            p.ballots.append(Proposal.Ballot(voter: caller.agent, principal: caller.principal, yes: yes, reason: reason, at: now, rev: rev))
            let outcome = p.certainOutcome()
            if let outcome { p.decide(outcome, rev: rev, at: now) }
            try reserve(&s, adding: Cost.proposal(p), freeing: s.proposals[ck].map(Cost.proposal) ?? 0, by: caller.principal)
            if outcome == nil {
                try commit(&s, .proposal(ns: ns, name: proposal, p, rev: rev, event: "cast"))
            } else {
                try commitEnding(&s, .proposal(ns: ns, name: proposal, p, rev: rev, event: "decided"), WaitKey(.proposal, ck))
            }
            return p
        }
    }

    /// Proposal `ns/proposal` as it stands (a round past its deadline is rejected first).
    /// When its round is open and `onEnd` is given, it is called once when it is decided.
    public func proposal(ns: String, name: String, onEnd: (@Sendable () -> Void)? = nil) -> (proposal: Proposal?, waiter: UInt64?) {
        state.withLock { s in
            let ck = ClaimKey(ns: ns, resource: name)
            let p = liveProposal(&s, ck)
            guard let p, p.status == .open, let onEnd else { return (p, nil) }
            return (p, addWaiter(WaitKey(.proposal, ck), onEnd))
        }
    }

    /// The monotonic time (ns) at which an open round's deadline comes.
    public func retryAt(_ p: Proposal) -> UInt64 { monoDeadline(p.deadline) }

    // MARK: internals (lock held)

    /// The proposal, its open round rejected first when its deadline has passed.
    func liveProposal(_ s: inout WorkingState, _ ck: ClaimKey) -> Proposal? {
        guard let p = s.proposals[ck] else { return nil }
        if p.status == .open, p.deadline <= time.nowMs() { _ = expireProposal(&s, ck, p) }
        return s.proposals[ck]
    }

    /// Rejects an open round at its deadline and tells its waiters.
    func expireProposal(_ s: inout WorkingState, _ ck: ClaimKey, _ p: Proposal) -> Bool {
        var p = p
        let rev = s.rev + 1
        p.decide(.rejected, rev: rev, at: time.nowMs())
        return (try? commitEnding(&s, .proposal(ns: ck.ns, name: ck.resource, p, rev: rev, event: "decided"), WaitKey(.proposal, ck))) != nil
    }
}
