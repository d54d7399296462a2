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
                _ = try p.optionalString("token")
                guard session.caller == nil else {
                    throw .invalidRequest("session.hello was already called on this connection")
                }
                // Without configured principals, every peer that can open the 0600 socket is
                // the single local principal with full rights.
                let caller = Caller(agent: agent, principal: "local", uid: session.peer.uid,
                                    gid: session.peer.gid, pid: session.peer.pid)
                session.caller = caller
                out.raw("{\"principal\":")
                out.string(caller.principal)
                out.raw(",\"agent\":")
                out.string(agent)
                out.raw(",\"grants\":[{\"ns\":\"**\",\"perms\":\"rwa\"}],\"server\":{\"name\":\"mnemod\",\"version\":")
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
