import MnemoCore
import MnemoProtocol

/// One connection's identity: the kernel's peer credentials from accept time, and the
/// caller established by `session.hello`.
struct Session: Sendable {
    /// Read with `SO_PEERCRED` when the connection was accepted.
    let peer: PeerCredentials
    /// Where server notifications for this session go.
    let connection: WatchHub.ConnectionRef
    /// Wakes the event loop serving this session (any thread).
    let wake: @Sendable () -> Void
    /// Set by `session.hello`; nil before it.
    var caller: Caller?
    /// The caller's principal's meter (connections, request rate); set by `session.hello`,
    /// which counted this connection in it.
    var meter: PrincipalMeter?
    /// The caller's grants (refreshed when the configuration is reloaded).
    var authorization = Authorization(grants: [], generation: 0)
    /// The id of the request being executed (for a call that parks).
    var currentID: JSON = .null
    /// Whether the request being executed may park (not inside a batch or a notification).
    var canPark = false
    /// Set by a handler whose answer comes later (`claim.acquire` with `wait_ms`).
    var parked: ParkedCall?
    /// Set by the dispatcher when the call runs on a worker thread.
    var offloaded: OffloadedCall?
    /// True in the copy a worker thread runs a call with: a wait blocks that thread
    /// instead of parking the call on the event loop.
    var onWorker = false
    /// Position of the call being executed in its batch.
    var batchIndex = 0
    /// Whether the request being executed was sent alone (not in a batch), so a handler
    /// may send notifications ahead of its response (a streamed `admin.export`).
    var canStream = false
    /// Notification lines a handler wants sent just before its response.
    var streamPreface: [UInt8] = []
    /// Results of a batch's `sem.search` calls, run together before the batch (by position).
    var prefetched: [Int: Result<SemanticStore.SearchResult, WireError>] = [:]
    /// Lines of a streamed `admin.import` waiting for its last call (shared by the copies a
    /// worker thread gets).
    let importStage = ImportStage()
    /// Outcomes of a batch's consecutive `sem.upsert` calls, written together in one
    /// transaction when the first of them is reached (by position).
    var prefetchedUpserts: [Int: Result<SemanticStore.UpsertResult, WireError>] = [:]

    init(peer: PeerCredentials, connection: WatchHub.ConnectionRef, wake: @escaping @Sendable () -> Void) {
        self.peer = peer
        self.connection = connection
        self.wake = wake
    }
}

extension Session {
    /// - Throws: `FORBIDDEN` unless the session's grants give `perm` on `ns`. The message
    ///   names the method, namespace and permission only, never whether anything exists.
    func require(_ perm: Perms, _ ns: String, _ method: String) throws(WireError) {
        guard authorization.allows(perm, ns) else { throw Session.forbidden(perm, ns, method) }
    }

    /// The namespaces the caller may read, for prefix operations; nil: all of them.
    var readable: (@Sendable (String) -> Bool)? {
        guard !authorization.unrestricted else { return nil }
        let a = authorization
        return { a.allows(.read, $0) }
    }

    static func forbidden(_ perm: Perms, _ ns: String, _ method: String) -> WireError {
        .app(.forbidden, "\(method) needs '\(perm.letters)' on \(ns.isEmpty ? "every namespace" : ns)",
             [JSONMember("ns", ns.isEmpty ? .string("**") : .string(ns)), JSONMember("perms", .string(perm.letters))])
    }
}
