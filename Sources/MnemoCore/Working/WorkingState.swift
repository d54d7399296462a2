import MnemoProtocol

/// The state behind the working-memory lock: namespaces of keys, claims, results, tasks,
/// inboxes, the global revision and expiry bookkeeping. Every method runs with the lock
/// held, so each operation is atomic and the store is linearizable.
struct WorkingState: Sendable {
    var spaces: [String: WorkingSpace] = [:]
    var claims: [ClaimKey: Claim] = [:]
    var results: [ClaimKey: StoredResult] = [:]
    var tasks: [ClaimKey: TaskRecord] = [:]
    var inboxes: [String: [String: InboxEntry]] = [:]
    /// Barriers and proposals, each charged ``Cost`` to its last party to act (barriers)
    /// or its opener (proposals): derived from the record, so replacing one moves the charge.
    var barriers: [ClaimKey: Barrier] = [:]
    var proposals: [ClaimKey: Proposal] = [:]
    var rev: Int64 = 0
    var keyCount = 0
    var bytes = 0
    /// `bytes` by the principal charged: the provenance of what is stored (the last
    /// writer of a key, the holder of a claim, the writer of each task step).
    var byPrincipal: [String: Int] = [:]
    var withTTL = 0
    /// Keys, results and inbox entries by wall-clock expiry.
    var expiry = ExpiryQueue()
    /// Claims by monotonic expiry (ms).
    var claimExpiry = ExpiryQueue()
    var expiredTotal = 0
    /// Revisions up to this are covered by a durable high-water mark (normal mode).
    var revCeiling: Int64 = 0
    /// While `collecting`, `apply` records here what each change did, for watches (the
    /// buffer is reused from change to change).
    var events: [WatchEvent] = []
    var collecting = false
    /// The write transaction under way, on a cluster node (see ``WorkingMemory/write(_:)``).
    var txn: ClusterTransaction?

    private mutating func emit(_ rev: Int64, _ tier: String, _ kind: String, _ ns: String, key: String? = nil, id: String? = nil) {
        if collecting { events.append(WatchEvent(rev: rev, tier: tier, kind: kind, ns: ns, key: key, id: id)) }
    }

    // MARK: applying changes (live and on replay)

    /// Applies a change. It must already be valid: checks happen before a change is made.
    mutating func apply(_ change: Change, monoNowMs: Int64, wallNowMs: Int64) {
        rev = max(rev, change.rev)
        switch change {
        case .put(let ns, let key, let item, let retimed):
            emit(item.version, "wm", retimed ? "ttl" : "set", ns, key: key)
            let old = spaces[ns]?.items[key]
            if let old, let lease = old.lease, lease != item.lease {
                claims[ClaimKey(ns: ns, resource: lease.resource)]?.leasedKeys.remove(key)
            }
            if let lease = item.lease { claims[ClaimKey(ns: ns, resource: lease.resource)]?.leasedKeys.insert(key) }
            put(ns, key, item, replacing: old)
        case .remove(let ns, let key, let rev, let expired):
            emit(rev, "wm", expired ? "expire" : "del", ns, key: key)
            if let old = remove(ns, key), let lease = old.lease {
                claims[ClaimKey(ns: ns, resource: lease.resource)]?.leasedKeys.remove(key)
            }
            if expired { expiredTotal += 1 }
        case .clear(let ns, let rev):
            emit(rev, "wm", "clear", ns)
            _ = removeSpace(ns)
        case .batch(_, let changes):
            for c in changes { apply(c, monoNowMs: monoNowMs, wallNowMs: wallNowMs) }
        case .claim(let ns, let resource, var claim):
            emit(claim.token, "claim", "acquire", ns, key: resource)
            let ck = ClaimKey(ns: ns, resource: resource)
            if let old = claims[ck] { charge(old.principal, -Cost.claim) }
            charge(claim.principal, Cost.claim)
            if let old = claims[ck], old.token == claim.token { claim.leasedKeys = old.leasedKeys }
            // Replayed claims get a monotonic deadline from the remaining wall-clock time.
            if claim.expiresMono == 0 {
                claim.expiresMono = UInt64(max(0, monoNowMs + (claim.expiresAt - wallNowMs))) * 1_000_000
            }
            claims[ck] = claim
            claimExpiry.insert(.init(expiresAt: Int64(claim.expiresMono / 1_000_000), ns: ns, key: resource, version: claim.token))
            compactClaimExpiryIfNeeded()
        case .renew(let ns, let resource, let token, let expiresAt, var expiresMono, let rev):
            let ck = ClaimKey(ns: ns, resource: resource)
            guard claims[ck]?.token == token else { return }
            emit(rev, "claim", "renew", ns, key: resource)
            if expiresMono == 0 { expiresMono = UInt64(max(0, monoNowMs + (expiresAt - wallNowMs))) * 1_000_000 }
            claims[ck]?.expiresAt = expiresAt
            claims[ck]?.expiresMono = expiresMono
            claimExpiry.insert(.init(expiresAt: Int64(expiresMono / 1_000_000), ns: ns, key: resource, version: token))
            compactClaimExpiryIfNeeded()
        case .unclaim(let ns, let resource, let rev, let at, let expired):
            let ck = ClaimKey(ns: ns, resource: resource)
            guard let claim = claims.removeValue(forKey: ck) else { return }
            charge(claim.principal, -Cost.claim)
            emit(rev, "claim", expired ? "expire" : "release", ns, key: resource)
            for key in claim.leasedKeys.sorted() {
                if let item = spaces[ns]?.items[key], item.lease?.resource == resource, item.lease?.token == claim.token {
                    remove(ns, key)
                    emit(rev, "wm", "expire", ns, key: key)  // its lease ended
                }
            }
            if expired, let task = tasks[ck], task.state == .claimed || task.state == .running {
                // The step is the daemon's own doing, stamped identically on replay.
                let prov = Provenance(agent: "mnemod", principal: "mnemod", uid: 0, pid: 0, at: at, rev: rev,
                                      task: resource, derivedFrom: nil)
                tasks[ck]?.append(TaskStep(from: task.state, to: .pending, provenance: prov))
                charge(prov.principal, Cost.taskStep)
                emit(rev, "task", TaskState.pending.rawValue, ns, key: resource)
            }
        case .result(let ns, let key, let r):
            emit(r.provenance.rev, "result", "put", ns, key: r.task, id: key)
            if let old = results[ClaimKey(ns: ns, resource: key)] { charge(old.provenance.principal, -Cost.result(old)) }
            charge(r.provenance.principal, Cost.result(r))
            results[ClaimKey(ns: ns, resource: key)] = r
            expiry.insert(.init(expiresAt: r.expiresAt, ns: ns, key: key, version: 0, tier: .result))
        case .forgetResult(let ns, let key, let rev):
            emit(rev, "result", "forget", ns, key: results[ClaimKey(ns: ns, resource: key)]?.task, id: key)
            if let old = results.removeValue(forKey: ClaimKey(ns: ns, resource: key)) { charge(old.provenance.principal, -Cost.result(old)) }
        case .task(let ns, let task, let step):
            emit(step.provenance.rev, "task", step.to.rawValue, ns, key: task)
            charge(step.provenance.principal, Cost.taskStep + (tasks[ClaimKey(ns: ns, resource: task)] == nil ? Cost.taskRecord : 0))
            tasks[ClaimKey(ns: ns, resource: task), default: TaskRecord(state: step.to, rev: step.provenance.rev, history: [])]
                .append(step)
        case .post(let ns, let entry):
            emit(entry.provenance.rev, "inbox", "post", ns, id: entry.id)
            charge(entry.provenance.principal, Cost.entry(entry))
            inboxes[ns, default: [:]][entry.id] = entry
            expiry.insert(.init(expiresAt: entry.expiresAt, ns: ns, key: entry.id, version: 0, tier: .inbox))
        case .ack(let ns, let ids, let rev):
            for id in ids {
                inboxes[ns]?[id]?.acked = true
                emit(rev, "inbox", "ack", ns, id: id)
            }
        case .ceiling:
            break
        case .dropEntry(let ns, let id, let rev):
            emit(rev, "inbox", "drop", ns, id: id)
            if let old = inboxes[ns]?.removeValue(forKey: id) { charge(old.provenance.principal, -Cost.entry(old)) }
            if inboxes[ns]?.isEmpty == true { inboxes[ns] = nil }
        case .barrier(let ns, let name, let b, let rev, let event):
            emit(rev, "barrier", event, ns, key: name)
            let ck = ClaimKey(ns: ns, resource: name)
            let old = barriers.updateValue(b, forKey: ck)
            if let old { charge(old.actor, -Cost.barrier(old)) }
            charge(b.actor, Cost.barrier(b))
            // One expiry entry per generation: set by its first arrival.
            if b.deadline != 0, old?.deadline != b.deadline {
                expiry.insert(.init(expiresAt: b.deadline, ns: ns, key: name, version: b.generation, tier: .barrier))
            }
        case .proposal(let ns, let name, let p, let rev, let event):
            emit(rev, "vote", event, ns, key: name)
            let ck = ClaimKey(ns: ns, resource: name)
            let old = proposals.updateValue(p, forKey: ck)
            if let old { charge(old.openedPrincipal, -Cost.proposal(old)) }
            charge(p.openedPrincipal, Cost.proposal(p))
            // One expiry entry per round: set when it opens.
            if p.status == .open, old?.round != p.round {
                expiry.insert(.init(expiresAt: p.deadline, ns: ns, key: name, version: p.round, tier: .proposal))
            }
        }
    }

    // MARK: key primitives

    /// Adds `delta` bytes to the total and to `principal`'s share.
    mutating func charge(_ principal: String, _ delta: Int) {
        bytes += delta
        let left = byPrincipal[principal, default: 0] + delta
        byPrincipal[principal] = left == 0 ? nil : left
    }

    mutating func put(_ ns: String, _ key: String, _ item: WorkingItem, replacing old: WorkingItem?) {
        if let old {
            charge(old.provenance.principal, -old.charge)
            if old.expiresAt != 0 { withTTL -= 1 }
        } else {
            keyCount += 1
        }
        var item = item
        item.charge = WorkingItem.cost(key: key, valueBytes: item.value.count)
        charge(item.provenance.principal, item.charge)
        if old == nil {
            spaces[ns, default: WorkingSpace()].items[key] = item
            spaces[ns]?.sortedKeys = nil
        } else {
            spaces[ns]?.items[key] = item
        }
        if item.expiresAt != 0 {
            withTTL += 1
            expiry.insert(.init(expiresAt: item.expiresAt, ns: ns, key: key, version: item.version))
            compactExpiryIfNeeded()  // after the item is stored, so its own entry survives a rebuild
        }
    }

    @discardableResult
    mutating func remove(_ ns: String, _ key: String) -> WorkingItem? {
        guard let old = spaces[ns]?.items.removeValue(forKey: key) else { return nil }
        keyCount -= 1
        charge(old.provenance.principal, -old.charge)
        if old.expiresAt != 0 { withTTL -= 1 }
        if spaces[ns]?.items.isEmpty == true {
            spaces[ns] = nil
        } else {
            spaces[ns]?.sortedKeys = nil
        }
        return old
    }

    mutating func removeSpace(_ ns: String) -> Int {
        guard let space = spaces.removeValue(forKey: ns) else { return 0 }
        for (key, item) in space.items {
            keyCount -= 1
            charge(item.provenance.principal, -item.charge)
            if item.expiresAt != 0 { withTTL -= 1 }
            if let lease = item.lease { claims[ClaimKey(ns: ns, resource: lease.resource)]?.leasedKeys.remove(key) }
        }
        return space.items.count
    }

    /// Renewals leave stale heap entries behind; rebuild once they dominate.
    private mutating func compactClaimExpiryIfNeeded() {
        guard claimExpiry.needsRebuild(live: claims.count) else { return }
        claimExpiry.rebuild(claims.map { k, c in
            .init(expiresAt: Int64(c.expiresMono / 1_000_000), ns: k.ns, key: k.resource, version: c.token)
        })
    }

    private mutating func compactExpiryIfNeeded() {
        let live = withTTL + results.count + inboxes.values.reduce(0) { $0 + $1.count } + barriers.count + proposals.count
        guard expiry.needsRebuild(live: live) else { return }
        var entries: [ExpiryQueue.Entry] = []
        for (ns, space) in spaces {
            for (key, item) in space.items where item.expiresAt != 0 {
                entries.append(.init(expiresAt: item.expiresAt, ns: ns, key: key, version: item.version))
            }
        }
        for (k, r) in results { entries.append(.init(expiresAt: r.expiresAt, ns: k.ns, key: k.resource, version: 0, tier: .result)) }
        for (ns, box) in inboxes {
            for (id, e) in box { entries.append(.init(expiresAt: e.expiresAt, ns: ns, key: id, version: 0, tier: .inbox)) }
        }
        for (k, b) in barriers where b.deadline != 0 {
            entries.append(.init(expiresAt: b.deadline, ns: k.ns, key: k.resource, version: b.generation, tier: .barrier))
        }
        for (k, p) in proposals where p.status == .open {
            entries.append(.init(expiresAt: p.deadline, ns: k.ns, key: k.resource, version: p.round, tier: .proposal))
        }
        expiry.rebuild(entries)
    }
}

/// Bytes charged against `max_working_bytes` for what is not a key: every stored object
/// counts, so no method can grow the daemon past its budget.
enum Cost {
    static let claim = 200
    static func result(_ r: StoredResult) -> Int { 240 + r.value.count + r.task.utf8.count }
    static func entry(_ e: InboxEntry) -> Int { 240 + e.content.count + e.type.utf8.count + e.to.utf8.count }
    static let taskRecord = 120
    static let taskStep = 160
    static func barrier(_ b: Barrier) -> Int {
        var total = 200
        for a in b.arrivals + b.finished.flatMap(\.arrivals) { total += 120 + a.value.count + a.agent.utf8.count }
        return total
    }
    static func proposal(_ p: Proposal) -> Int {
        var total = 240 + p.payload.count
        for v in p.voters ?? [] { total += 24 + v.utf8.count }
        for b in p.ballots { total += 120 + b.voter.utf8.count + (b.reason?.utf8.count ?? 0) }
        return total
    }
}

extension Barrier {
    /// The principal charged for it: its latest arrival's.
    var actor: String { (arrivals.last ?? finished.last?.arrivals.last)?.principal ?? "mnemod" }
}
