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
