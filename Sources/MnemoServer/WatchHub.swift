import MnemoCore
import MnemoProtocol
import Synchronization

/// Watches: who wants events for which namespace prefix, plus a bounded history of recent
/// events so that a watch can resume from a revision.
///
/// The store calls ``publish(_:)`` with its lock held, in revision order; subscribing
/// takes the hub's lock too, so a watch gets the history and then the live events with
/// neither gap nor duplicate.
final class WatchHub: Sendable {
    struct Subscription: Sendable {
        let id: String
        let connection: ConnectionRef
        let ns: String
        let prefix: String?
        let tiers: Set<String>?
        /// The namespaces the subscriber may read (access control); nil: all.
        let readable: LiveReadable?

        func matches(_ e: WatchEvent) -> Bool {
            guard Validate.covers(ns, e.ns) else { return false }
            if let tiers, !tiers.contains(e.tier) { return false }
            if let readable, !readable.allows(e.ns) { return false }
            // A namespace-wide event (wm.clear) concerns every key prefix.
            if let prefix, let name = e.key ?? e.id { return name.hasPrefix(prefix) }
            return true
        }
    }

    /// Where to deliver: a connection of an event loop.
    struct ConnectionRef: Sendable, Hashable {
        let loop: Int
        let id: UInt64
    }

    private struct State {
        var subscriptions: [String: Subscription] = [:]
        /// A ring of the last `capacity` events; `next` is where the next one goes.
        var history: [WatchEvent] = []
        var next = 0
        /// The oldest revision the history still covers.
        var firstCovered: Int64
        /// The revision of the last event published.
        var lastRev: Int64
        var nextID = 1

    }

    private let state: Mutex<State>
    private let capacity: Int
    private let deliver: @Sendable (ConnectionRef, [UInt8]) -> Void

    init(capacity: Int, currentRev: Int64, deliver: @escaping @Sendable (ConnectionRef, [UInt8]) -> Void) {
        self.capacity = capacity
        self.deliver = deliver
        var initial = State(firstCovered: currentRev + 1, lastRev: currentRev)
        initial.history.reserveCapacity(min(capacity, 1 << 16))
        self.state = Mutex(initial)
    }

    /// Records events and forwards them to matching watches.
    func publish(_ events: [WatchEvent]) {
        state.withLock { s in
            for e in events {
                s.lastRev = max(s.lastRev, e.rev)
                if capacity == 0 {
                    s.firstCovered = e.rev + 1
                } else if s.history.count < capacity {
                    s.history.append(e)
                } else {
                    // Overwrite the oldest entry in place: no shifting, no allocation.
                    s.firstCovered = s.history[s.next].rev + 1
                    s.history[s.next] = e
                    s.next = (s.next + 1) % capacity
                }
                if s.subscriptions.isEmpty { continue }
                for sub in s.subscriptions.values where sub.matches(e) { deliver(sub.connection, Self.notification(sub.id, e)) }
            }
        }
    }

    /// Adds a watch; replays history from `fromRev` first.
    /// - Returns: the watch id and the revision it starts after: every later change is
    ///   delivered (taken under the hub's lock, so none slips between).
    /// - Throws: `LIMIT_EXCEEDED` (`watch_history`) when `fromRev` is older than the history.
    func subscribe(connection: ConnectionRef, ns: String, prefix: String?, tiers: Set<String>?, fromRev: Int64?,
                   readable: LiveReadable?, maxPerConnection: Int) throws(WireError) -> (id: String, rev: Int64) {
        try state.withLock { s throws(WireError) in
            let mine = s.subscriptions.values.filter { $0.connection == connection }.count
            guard mine < maxPerConnection else {
                throw .limit("max_watches_per_connection", max: maxPerConnection, "this connection already has \(mine) watches")
            }
            if let fromRev, fromRev < s.firstCovered, fromRev <= s.lastRev {
                throw .app(.limitExceeded, "revision \(fromRev) is older than the watch history (oldest \(s.firstCovered))",
                           [JSONMember("limit", "watch_history"), JSONMember("max", .int(capacity)),
                            JSONMember("oldest_rev", .int(s.firstCovered))])
            }
            let id = "w\(s.nextID)"
            s.nextID += 1
            let sub = Subscription(id: id, connection: connection, ns: ns, prefix: prefix, tiers: tiers, readable: readable)
            if let fromRev {
                let ordered = s.history.count < capacity ? s.history[...] : s.history[s.next...] + s.history[..<s.next]
                for e in ordered where e.rev >= fromRev && sub.matches(e) {
                    deliver(connection, Self.notification(id, e))
                }
            }
            s.subscriptions[id] = sub
            return (id, s.lastRev)
        }
    }

    /// Removes one watch of `connection`; false if it has no such watch.
    func cancel(_ id: String, connection: ConnectionRef) -> Bool {
        state.withLock { s in
            guard s.subscriptions[id]?.connection == connection else { return false }
            s.subscriptions[id] = nil
            return true
        }
    }

    /// Removes every watch of a connection. - Returns: their ids.
    @discardableResult
    func cancelAll(connection: ConnectionRef) -> [String] {
        state.withLock { s in
            let ids = s.subscriptions.values.filter { $0.connection == connection }.map(\.id)
            for id in ids { s.subscriptions[id] = nil }
            return ids
        }
    }

    /// Whether `connection` holds a watch.
    func hasWatches(connection: ConnectionRef) -> Bool {
        state.withLock { s in s.subscriptions.values.contains { $0.connection == connection } }
    }

    /// Number of active watches.
    var count: Int { state.withLock { $0.subscriptions.count } }

    static func notification(_ watchID: String, _ e: WatchEvent) -> [UInt8] {
        var w = JSONWriter(capacity: 128)
        w.raw("{\"jsonrpc\":\"2.0\",\"method\":\"event\",\"params\":{\"watch_id\":")
        w.string(watchID)
        w.raw(",\"rev\":")
        w.int(e.rev)
        w.raw(",\"tier\":")
        w.string(e.tier)
        w.raw(",\"kind\":")
        w.string(e.kind)
        w.raw(",\"ns\":")
        w.string(e.ns)
        if let key = e.key {
            w.raw(",\"key\":")
            w.string(key)
        }
        if let id = e.id {
            w.raw(",\"id\":")
            w.string(id)
        }
        w.raw("}}\n")
        return w.bytes
    }
}

/// A watcher's read grants, kept current across configuration reloads: events from
/// namespaces the watcher may not read are never delivered.
final class LiveReadable: Sendable {
    private let access: AccessControl
    private let principal: String
    private let agent: String
    private let cached: Mutex<Authorization>

    init(access: AccessControl, caller: Caller, current: Authorization) {
        self.access = access
        principal = caller.principal
        agent = caller.agent
        cached = Mutex(current)
    }

    func allows(_ ns: String) -> Bool {
        cached.withLock { a in
            a = access.current(a, principal: principal, agent: agent)
            return a.allows(.read, ns)
        }
    }
}
