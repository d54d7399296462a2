import MnemoCore
import Testing

@Suite("Access: grant patterns")
struct GrantTests {
    func grant(_ p: String, _ perms: Perms = .read) throws -> Grant { try #require(Grant(pattern: p, perms: perms)) }

    @Test("a pattern covers the namespaces whose leading segments it matches")
    func covers() throws {
        let g = try grant("wf/*")
        #expect(g.covers("wf/42") && g.covers("wf/42/tasks"))
        #expect(!g.covers("wf") && !g.covers("wfx/1") && !g.covers("other/42"))
        #expect(try grant("wf/**").covers("wf/a/b") && grant("wf/**").covers("wf"))
        #expect(try grant("**").covers("anything/at/all"))
        #expect(try grant("a/*/c").covers("a/b/c/d") && !grant("a/*/c").covers("a/b/x"))
        #expect(!(try grant("wf/4")).covers("wf/42"))
    }

    @Test("{agent} binds to the session's agent")
    func agent() throws {
        let g = try grant("agents/{agent}").bound(to: "planner")
        #expect(g.pattern == "agents/planner" && g.covers("agents/planner/notes") && !g.covers("agents/worker"))
    }

    @Test("bad patterns and letters are refused")
    func bad() {
        for p in ["", "/a", "a//b", "a/**/b", "a b", "**x"] { #expect(Grant(pattern: p, perms: .read) == nil, "\(p)") }
        for l in ["", "x", "rr", "rwax"] { #expect(Perms(letters: l) == nil, "\(l)") }
        #expect(Perms(letters: "ar")?.letters == "ra")
    }

    @Test("authorization: the root needs **; permissions add up across grants")
    func authorization() throws {
        let a = Authorization(grants: [try grant("wf/*", .read), try grant("wf/42", [.write])], generation: 1)
        #expect(a.allows(.read, "wf/42") && a.allows(.write, "wf/42/x") && !a.allows(.write, "wf/43"))
        #expect(!a.allows(.read, "") && !a.unrestricted)
        #expect(Authorization(grants: Principal.local.grants, generation: 1).unrestricted)
    }

    @Test("a principal without a token is chosen by uid; no principals: the local one")
    func authenticate() throws {
        let access = AccessControl(principals: [
            Principal(name: "by-uid", tokenSHA256: nil, uids: [1000], grants: []),
        ])
        #expect(access.authenticate(token: nil, uid: 1000)?.name == "by-uid")
        #expect(access.authenticate(token: nil, uid: 1001) == nil)
        #expect(access.authenticate(token: "x", uid: 1000) == nil)
        #expect(AccessControl(principals: []).authenticate(token: nil, uid: 5)?.name == "local")
    }
}
