import MnemoCore
import MnemoProtocol

extension Dispatcher {
    static func watchMethods(engine: Engine, hub: WatchHub) -> [(String, Method)] {
        let tierNames: Set<String> = ["wm", "claim", "task", "inbox", "result", "ep", "sem", "barrier", "vote"]
        return [
            ("watch.subscribe", Method(requiresSession: true) { p, session, out throws(WireError) in
                try p.allowOnly(["ns", "prefix", "from_rev", "tiers"])
                let ns = try p.namespace()
                var tiers: Set<String>? = nil
                if let list = try p.optionalArray("tiers") {
                    var set = Set<String>()
                    for t in list {
                        guard let name = t.stringValue, tierNames.contains(name) else {
                            throw .invalidParams("tiers", "each tier must be one of \(tierNames.sorted().joined(separator: ", "))")
                        }
                        set.insert(name)
                    }
                    tiers = set
                }
                let (id, rev) = try hub.subscribe(
                    connection: session.connection, ns: ns, prefix: try p.optionalString("prefix"), tiers: tiers,
                    fromRev: try p.optionalInt("from_rev", in: 1...Int64.max),
                    readable: engine.access.isOpen ? nil
                        : LiveReadable(access: engine.access, caller: try session.callerOrThrow(), current: session.authorization),
                    maxPerConnection: engine.limits.maxWatchesPerConnection)
                out.raw("{\"watch_id\":")
                out.string(id)
                out.raw(",\"rev\":")
                out.int(rev)
                out.raw("}")
            }),
            ("watch.cancel", Method(requiresSession: true) { p, session, out throws(WireError) in
                try p.allowOnly(["watch_id"])
                let cancelled = hub.cancel(try p.string("watch_id"), connection: session.connection)
                out.raw(cancelled ? "{\"cancelled\":true}" : "{\"cancelled\":false}")
            }),
        ]
    }
}
