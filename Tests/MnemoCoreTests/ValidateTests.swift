import MnemoCore
import MnemoProtocol
import Testing

@Suite("Validate")
struct ValidateTests {
    static func error(_ body: () throws(WireError) -> Void) -> WireError? {
        do { try body(); return nil } catch { return error }
    }

    static let sixteen = Array(repeating: "s", count: 16).joined(separator: "/")
    static let seventeen = Array(repeating: "s", count: 17).joined(separator: "/")

    @Test(
        "namespaces that follow the contract are accepted",
        arguments: [
            "wf/42/tasks", "a", "A", "0", "A-Za-z0-9._:-", "a/b", "task:1/step.2/x_y-z", "..", "./x",
            sixteen,
            String(repeating: "a", count: 512),
            Array(repeating: String(repeating: "n", count: 31), count: 16).joined(separator: "/"),  // 16*31+15 = 511
            Array(repeating: String(repeating: "n", count: 31), count: 15).joined(separator: "/") + "/" + String(repeating: "n", count: 32),  // 512
        ])
    func namespaceAccepted(_ ns: String) {
        #expect(Self.error { () throws(WireError) in try Validate.namespace(ns) } == nil)
    }

    @Test(
        "malformed namespaces are -32602 naming the field",
        arguments: [
            "", "/", "/a", "a/", "a//b", "//", "a/b/", seventeen,
            String(repeating: "a", count: 513),
            "a b", " a", "a ", "a*", "*", "a/*", "é", "ns/é", "a\tb", "a\nb", "a\\b", "a?b", "a#b", "a%2F", "a,b", "a\u{0}",
            "a@b", "a+b", "a=b", "(a)", "ａ",  // fullwidth a
        ])
    func namespaceRejected(_ ns: String) {
        let e = Self.error { () throws(WireError) in try Validate.namespace(ns) }
        #expect(e?.code == -32602, "accepted \(ns.debugDescription)")
        #expect(e?.detail("field") == "ns")
    }

    @Test("a custom field name is reported")
    func namespaceField() {
        let e = Self.error { () throws(WireError) in try Validate.namespace("a//b", field: "compare[0].ns") }
        #expect(e?.detail("field") == "compare[0].ns")
    }

    @Test("agent names of 1...64 allowed characters are accepted",
          arguments: ["a", "agent-1", "A.b_c:d-e", "0", String(repeating: "x", count: 64)])
    func agentAccepted(_ name: String) {
        #expect(Self.error { () throws(WireError) in try Validate.agent(name) } == nil)
    }

    @Test("other agent names are -32602 naming agent",
          arguments: ["", String(repeating: "x", count: 65), "a/b", "a b", "é", "*", "a\n", "agent!", "ａ"])
    func agentRejected(_ name: String) {
        let e = Self.error { () throws(WireError) in try Validate.agent(name) }
        #expect(e?.code == -32602, "accepted \(name.debugDescription)")
        #expect(e?.detail("field") == "agent")
    }

    @Test("identifiers: non-empty and at most max bytes")
    func identifier() {
        #expect(Self.error { () throws(WireError) in try Validate.identifier("x", field: "task") } == nil)
        #expect(Self.error { () throws(WireError) in try Validate.identifier("any thing/é*", field: "task") } == nil)
        #expect(Self.error { () throws(WireError) in
            try Validate.identifier(String(repeating: "x", count: Limits.maxIdentifierBytes), field: "task")
        } == nil)
        for bad in ["", String(repeating: "x", count: Limits.maxIdentifierBytes + 1)] {
            let e = Self.error { () throws(WireError) in try Validate.identifier(bad, field: "task") }
            #expect(e?.code == -32602)
            #expect(e?.detail("field") == "task")
        }
        let e = Self.error { () throws(WireError) in try Validate.identifier("ééé", field: "k", max: 5) }
        #expect(e?.detail("field") == "k")
    }
}
