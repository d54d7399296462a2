import MnemoProtocol

extension WorkingMemory {
    /// What `claim.acquire` got.
    public enum AcquireOutcome: Sendable, Equatable {
        /// The caller holds the claim.
        case granted(token: Int64, expiresAt: Int64)
        /// Someone else holds it until `expiresAt` (wall ms); `retryAtNs` is the monotonic
        /// time at which it expires if not renewed.
        case held(holder: String, expiresAt: Int64, retryAtNs: UInt64)
    }

    /// Takes the claim on `ns/resource` if nobody holds it.
    /// - Complexity: O(1) amortized.
    public func acquire(ns: String, resource: String, ttlMs: Int64, by caller: Caller) throws(WireError) -> AcquireOutcome {
        try acquire(ns: ns, resource: resource, ttlMs: ttlMs, by: caller, onEnd: nil).outcome
    }

    /// Takes the claim, or, when it is held and `onEnd` is given, registers `onEnd` to run
    /// once when that claim ends — in the same critical section, so no release can slip
    /// in between. Cancel an unneeded registration with ``cancelWait(_:id:)``.
    /// - Returns: the outcome, and the registration's id when one was made.
    ///
    /// A leader's campaign (`value` given, `reentrant`): the value is kept with the claim,
    /// and the holder campaigning again keeps its token and extends its lease.
    public func acquire(ns: String, resource: String, ttlMs: Int64, by caller: Caller, value: [UInt8]? = nil,
                        reentrant: Bool = false,
                        onEnd: (@Sendable () -> Void)?) throws(WireError) -> (outcome: AcquireOutcome, waiter: UInt64?) {
        try Validate.identifier(resource, field: "resource")
        try checkClaimTTL(ttlMs)
        return try write { s throws(WireError) in
            let ck = ClaimKey(ns: ns, resource: resource)
            if reentrant, let held = liveClaim(&s, ck), held.holder == caller.agent, held.principal == caller.principal {
                let expiresAt = time.nowMs() + ttlMs
                try commit(&s, .renew(ns: ns, resource: resource, token: held.token, expiresAt: expiresAt,
                                      expiresMono: time.monotonicNs() + UInt64(ttlMs) * 1_000_000, rev: s.rev + 1))
                return (.granted(token: held.token, expiresAt: expiresAt), nil)
            }
            if let held = liveClaim(&s, ck) {
                let waiter = onEnd.map { addWaiter(WaitKey(.claim, ck), $0) }
                return (.held(holder: held.holder, expiresAt: held.expiresAt, retryAtNs: held.expiresMono), waiter)
            }
            // An expired claim that could not be ended (journal unavailable) still owns its
            // leased keys and task: it must end before the resource is granted again.
            if s.claims[ck] != nil {
                throw .app(.unavailable, "the expired claim on \(resource) could not be ended; nothing was applied")
            }
            try reserve(&s, adding: Cost.claim, freeing: 0, by: caller.principal)
            let token = s.rev + 1
            let now = time.nowMs()
            let claim = Claim(holder: caller.agent, principal: caller.principal, token: token,
                              expiresAt: now + ttlMs, expiresMono: time.monotonicNs() + UInt64(ttlMs) * 1_000_000,
                              value: value, since: now)
            try commit(&s, .claim(ns: ns, resource: resource, claim))
            return (.granted(token: token, expiresAt: claim.expiresAt), nil)
        }
    }

    /// Extends a live claim held with `token`.
    /// - Throws: `FENCED` when the claim ended or `token` is not its current token.
    public func renew(ns: String, resource: String, token: Int64, ttlMs: Int64, by caller: Caller) throws(WireError) -> Int64 {
        try Validate.identifier(resource, field: "resource")
        try checkClaimTTL(ttlMs)
        return try write { s throws(WireError) in
            let ck = ClaimKey(ns: ns, resource: resource)
            guard var claim = liveClaim(&s, ck), claim.token == token else {
                throw Self.fenced(resource, given: token, current: s.claims[ck]?.token)
            }
            claim.expiresAt = time.nowMs() + ttlMs
            claim.expiresMono = time.monotonicNs() + UInt64(ttlMs) * 1_000_000
            // A renewal keeps the token and takes a revision of its own.
            try commit(&s, .renew(ns: ns, resource: resource, token: token, expiresAt: claim.expiresAt,
                                  expiresMono: claim.expiresMono, rev: s.rev + 1))
            return claim.expiresAt
        }
    }

    /// Ends the claim held with `token`; its leased keys are deleted.
    /// - Returns: false when there was no live claim with that token (nothing changed).
    public func release(ns: String, resource: String, token: Int64, by caller: Caller) throws(WireError) -> Bool {
        try Validate.identifier(resource, field: "resource")
        return try write { s throws(WireError) in
            let ck = ClaimKey(ns: ns, resource: resource)
            guard let claim = liveClaim(&s, ck), claim.token == token else { return false }
            try commit(&s, .unclaim(ns: ns, resource: resource, rev: s.rev + 1, at: time.nowMs(), expired: false))
            for waiter in takeWaiters(WaitKey(.claim, ck)) { waiter() }
            return true
        }
    }

    /// One live claim.
    public struct ClaimInfo: Sendable, Equatable {
        /// The resource.
        public var resource: String
        /// Its holder.
        public var holder: String
        /// The fencing token.
        public var token: Int64
        /// Wall-clock expiry (ms).
        public var expiresAt: Int64
    }

    /// The live claim on `ns/resource` (a leader's, for an election), if any.
    public func claim(ns: String, resource: String) -> Claim? {
        state.withLock { s in liveClaim(&s, ClaimKey(ns: ns, resource: resource)) }
    }

    /// Live claims of exactly this namespace, by resource.
    /// - Complexity: O(all claims).
    public func claims(ns: String) -> [ClaimInfo] {
        state.withLock { s in
            let keys = s.claims.keys.filter { $0.ns == ns }
            return keys.compactMap { ck in
                liveClaim(&s, ck).map { ClaimInfo(resource: ck.resource, holder: $0.holder, token: $0.token, expiresAt: $0.expiresAt) }
            }.sorted { $0.resource < $1.resource }
        }
    }

    // MARK: internals (lock held)

    /// The claim if it is live; an expired one is ended first (its keys go, its task
    /// returns to pending).
    func liveClaim(_ s: inout WorkingState, _ ck: ClaimKey) -> Claim? {
        guard let claim = s.claims[ck] else { return nil }
        if claim.expiresMono > time.monotonicNs() { return claim }
        _ = expireClaim(&s, ck)
        return nil
    }

    /// Ends an expired claim, wherever its expiry was noticed, and tells its waiters
    /// (their callbacks only flag and wake, so calling them under the lock is safe).
    @discardableResult
    func expireClaim(_ s: inout WorkingState, _ ck: ClaimKey) -> Bool {
        guard (try? commit(&s, .unclaim(ns: ck.ns, resource: ck.resource, rev: s.rev + 1, at: time.nowMs(), expired: true))) != nil
        else { return false }
        for waiter in takeWaiters(WaitKey(.claim, ck)) { waiter() }
        return true
    }

    /// Rejects a stale holder: the claim must be live and `token` its current token. A
    /// fence (not a lease) may also name a proposal: then `token` must be its newest
    /// decision's, and that decision an acceptance.
    func checkFence(_ s: inout WorkingState, ns: String, resource: String, token: Int64, orDecision: Bool = false) throws(WireError) {
        let ck = ClaimKey(ns: ns, resource: resource)
        if let claim = liveClaim(&s, ck), claim.token == token { return }
        if orDecision, let p = liveProposal(&s, ck) {
            guard p.authority == token else { throw Self.fenced(resource, given: token, current: p.authority) }
            return
        }
        throw Self.fenced(resource, given: token, current: s.claims[ck]?.token)
    }

    /// `FENCED`: `token` is the resource's live token (null when free), `given_token` the
    /// caller's stale one.
    static func fenced(_ resource: String, given: Int64, current: Int64?) -> WireError {
        .app(.fenced, "stale fencing token \(given) for \(resource)",
             [JSONMember("resource", .string(resource)), JSONMember("token", current.map { .int($0) } ?? .null),
              JSONMember("given_token", .int(given))])
    }

    private func checkClaimTTL(_ ttl: Int64) throws(WireError) {
        guard ttl >= 1, ttl <= limits.maxTTLms else {
            throw .invalidParams("ttl_ms", "must be between 1 and \(limits.maxTTLms)")
        }
    }
}
