/// Every method mnemod serves, one entry each, in the order `admin.stats` keeps their
/// statistics: its name, what it needs from the caller's grants, and how a cluster node
/// serves it. Adding a method is an entry here, its handler and its schema
/// (CONTRIBUTING.md); the dispatcher refuses to start when a handler and this list
/// disagree, and `MethodRegistryTests` checks the schemas and the Python client against it.
struct MethodEntry: Sendable {
    /// How a cluster node serves a method (see `Dispatcher+Cluster.swift`).
    enum Cluster: Sendable {
        /// As a single node does.
        case same
        /// A write: run on a worker thread unless it may park.
        case write
        /// A read that takes `min_rev` and `consistency` (on any node).
        case freshRead
        /// Refused (-32601): it replaces or copies one node's files, not the cluster's state.
        case singleNodeOnly
    }

    let name: String
    let access: MethodAccess
    let cluster: Cluster

    init(_ name: String, _ access: MethodAccess, _ cluster: Cluster = .same) {
        self.name = name
        self.access = access
        self.cluster = cluster
    }
}

enum MethodRegistry {
    static let all: [MethodEntry] = [
        .init("session.hello", .open), .init("admin.health", .open), .init("admin.stats", .global(.admin)),
        .init("wm.set", .ns(.write), .write), .init("wm.get", .ns(.read), .freshRead), .init("wm.del", .ns(.write), .write),
        .init("wm.list", .ns(.read), .freshRead), .init("wm.expire", .ns(.write), .write), .init("wm.clear", .ns(.admin), .write),
        .init("wm.txn", .handler, .write),
        .init("claim.acquire", .ns(.write), .write), .init("claim.renew", .ns(.write), .write),
        .init("claim.release", .ns(.write), .write), .init("claim.list", .ns(.read), .freshRead),
        .init("result.put", .ns(.write), .write), .init("task.transition", .ns(.write), .write),
        .init("task.get", .ns(.read), .freshRead),
        .init("inbox.post", .ns(.write), .write), .init("inbox.read", .ns(.read), .freshRead), .init("inbox.ack", .ns(.write), .write),
        .init("watch.subscribe", .prefixRead), .init("watch.cancel", .open),
        .init("sem.upsert", .ns(.write), .write), .init("sem.search", .prefixRead, .freshRead),
        .init("sem.get", .ns(.read), .freshRead), .init("sem.history", .ns(.read), .freshRead),
        .init("sem.delete", .ns(.write), .write),
        .init("ep.append", .ns(.write), .write), .init("ep.query", .prefixRead, .freshRead),
        .init("ep.search", .prefixRead, .freshRead), .init("ep.summarize", .ns(.admin), .write),
        .init("ep.prune", .handler, .write), .init("ep.pin", .handler, .write),
        .init("audit.query", .handlerRead),
        .init("admin.export", .handler), .init("admin.import", .handler, .singleNodeOnly),
        .init("admin.snapshot", .global(.admin), .singleNodeOnly), .init("admin.check", .global(.admin)),
        .init("barrier.arrive", .ns(.write), .write), .init("barrier.get", .ns(.read), .freshRead),
        .init("barrier.list", .ns(.read), .freshRead),
        .init("vote.open", .ns(.write), .write), .init("vote.cast", .ns(.write), .write), .init("vote.get", .ns(.read)),
        .init("leader.campaign", .ns(.write), .write), .init("leader.get", .ns(.read), .freshRead),
        .init("leader.resign", .ns(.write), .write),
    ]

    /// The entry named `name`.
    static let byName: [String: MethodEntry] = Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })
}
