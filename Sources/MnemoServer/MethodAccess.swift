import MnemoCore
import MnemoProtocol

/// What a method needs from the caller's grants, checked by the dispatcher before the
/// handler touches any state.
enum MethodAccess: Sendable {
    /// Nothing (allowed before `session.hello`).
    case open
    /// `perm` on every namespace (`**`).
    case global(Perms)
    /// `perm` on the namespace in the `ns` param.
    case ns(Perms)
    /// A namespace prefix, read: the handler shows only what the grants cover.
    case prefixRead
    /// Checked by the handler, which knows which namespaces the call touches.
    case handler
    /// Checked by the handler; a read (not audited unless denied).
    case handlerRead

    /// Whether a call changes state (or is an admin call), for the audit log: those are
    /// recorded, reads only when denied.
    var isMutation: Bool {
        switch self {
        case .global(let p), .ns(let p): return !p.isDisjoint(with: [.write, .admin])
        case .open, .prefixRead, .handlerRead: return false
        case .handler: return true
        }
    }

    /// Every method's access, one table.
    static let table: [String: MethodAccess] = [
        "session.hello": .open, "admin.health": .open, "admin.stats": .global(.admin),
        "wm.set": .ns(.write), "wm.get": .ns(.read), "wm.del": .ns(.write), "wm.list": .ns(.read),
        "wm.expire": .ns(.write), "wm.clear": .ns(.admin), "wm.txn": .handler,
        "claim.acquire": .ns(.write), "claim.renew": .ns(.write), "claim.release": .ns(.write), "claim.list": .ns(.read),
        "result.put": .ns(.write), "task.transition": .ns(.write), "task.get": .ns(.read),
        "inbox.post": .ns(.write), "inbox.read": .ns(.read), "inbox.ack": .ns(.write),
        "watch.subscribe": .prefixRead, "watch.cancel": .open,
        "ep.append": .ns(.write), "ep.query": .prefixRead, "ep.search": .prefixRead, "ep.summarize": .ns(.admin),
        "ep.prune": .handler, "ep.pin": .handler,
        "sem.upsert": .ns(.write), "sem.search": .prefixRead, "sem.get": .ns(.read), "sem.history": .ns(.read), "sem.delete": .ns(.write),
        "audit.query": .handlerRead,
        "admin.export": .handler, "admin.import": .handler, "admin.snapshot": .global(.admin),
        "admin.check": .global(.admin),
        "barrier.arrive": .ns(.write), "barrier.get": .ns(.read), "barrier.list": .ns(.read),
        "vote.open": .ns(.write), "vote.cast": .ns(.write), "vote.get": .ns(.read),
        "leader.campaign": .ns(.write), "leader.get": .ns(.read), "leader.resign": .ns(.write),
    ]
}

extension Dispatcher {
    /// Checks a call against the session's grants (refreshing them after a reload).
    /// - Throws: `FORBIDDEN`.
    func authorize(_ access: MethodAccess, _ request: RPCRequest, _ session: inout Session) throws(WireError) {
        guard let caller = session.caller else { return }
        session.authorization = engine.access.current(session.authorization, principal: caller.principal, agent: caller.agent)
        guard !session.authorization.unrestricted else { return }
        switch access {
        case .open, .prefixRead, .handler, .handlerRead:
            return
        case .global(let perm):
            try session.require(perm, "", request.method)
        case .ns(let perm):
            // A missing or malformed ns is the handler's -32602, before any state is read.
            guard let ns = request.params["ns"]?.stringValue else { return }
            try session.require(perm, ns, request.method)
        }
    }
}
