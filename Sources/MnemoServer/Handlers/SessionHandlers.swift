import MnemoCore
import MnemoProtocol

extension Dispatcher {
    static func sessionMethods(engine: Engine, info: ServerInfo) -> [(String, Method)] {
        [
            ("session.hello", Method(requiresSession: false) { p, session, out throws(WireError) in
                try p.allowOnly(["agent", "token", "client"])
                let agent = try p.string("agent")
                try Validate.agent(agent)
                if let client = try p.optionalString("client"), client.utf8.count > 128 {
                    throw .invalidParams("client", "longer than 128 bytes")
                }
                let token = try p.optionalString("token")
                guard session.caller == nil else {
                    throw .invalidRequest("session.hello was already called on this connection")
                }
                // With no principals configured, every peer that can open the 0600 socket is
                // the single local principal with full rights.
                guard let principal = engine.access.authenticate(token: token, uid: session.peer.uid) else {
                    throw .app(.unauthenticated, "no principal matches this token from uid \(session.peer.uid)")
                }
                let caller = Caller(agent: agent, principal: principal.name, uid: session.peer.uid,
                                    gid: session.peer.gid, pid: session.peer.pid)
                let granted = engine.access.grants(principal: principal.name, agent: agent)
                let meter = engine.access.quotas.meter(principal.name)
                try meter.openConnection()
                session.meter = meter
                session.caller = caller
                session.authorization = Authorization(grants: granted.grants, generation: granted.generation)
                out.raw("{\"principal\":")
                out.string(caller.principal)
                out.raw(",\"agent\":")
                out.string(agent)
                out.raw(",\"grants\":[")
                for (i, g) in granted.grants.enumerated() {
                    if i > 0 { out.byte(UInt8(ascii: ",")) }
                    out.raw("{\"ns\":")
                    out.string(g.pattern)
                    out.raw(",\"perms\":")
                    out.string(g.perms.letters)
                    out.byte(UInt8(ascii: "}"))
                }
                out.raw("],\"server\":{\"name\":\"mnemod\",\"version\":")
                out.string(ServerInfo.version)
                out.raw(",\"protocol\":")
                out.int(ServerInfo.protocolVersion)
                out.raw("},\"peer\":{\"uid\":")
                out.uint(UInt64(session.peer.uid))
                out.raw(",\"gid\":")
                out.uint(UInt64(session.peer.gid))
                out.raw(",\"pid\":")
                out.int(Int64(session.peer.pid))
                out.raw("},\"limits\":{")
                for (i, (name, value)) in info.limits.all.enumerated() {
                    if i > 0 { out.byte(UInt8(ascii: ",")) }
                    out.key(name)
                    out.int(value)
                }
                out.raw("}}")
            }),
        ]
    }
}
