import Foundation
import MnemoProtocol
import Testing

@Suite("mnemo watch, ep, sem, claim, task, inbox: every tier from the shell")
struct TierCLITests {
    /// The JSON a command printed (-o json).
    static func json(_ r: (status: Int32, stdout: String, stderr: String)) throws -> JSON {
        try JSONParser.parse(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    @Test func everyTierAnswersWithExitCodesAScriptCanTest() throws {
        let daemon = try Daemon()
        defer { daemon.stop() }
        func run(_ args: String...) throws -> (status: Int32, stdout: String, stderr: String) { try daemon.cli(args) }

        // Episodic: append, query (newest first), search.
        #expect(try run("ep", "append", "wf/9/log", "deployed billing to staging", "--kind", "step", "--tag", "deploy").status == 0)
        #expect(try run("ep", "append", "wf/9/log", "rolled back billing", "--data", "{\"reason\":\"errors\"}").status == 0)
        #expect(try run("ep", "append", "wf/9/log", "x", "--data", "not json").status == 64)
        let q = try Self.json(try run("ep", "query", "wf/9", "--desc", "--limit", "1", "-o", "json"))
        #expect(q["records"]?.arrayValue?.map { $0["content"] } == ["rolled back billing"])
        #expect(q["cursor"] != nil)
        let found = try run("ep", "search", "wf/9", "billing staging", "--mode", "keyword")
        #expect(found.status == 0 && found.stdout.contains("deployed billing to staging"), "\(found.stdout)")

        // Semantic: get (and its history), delete; exit 1 when absent.
        _ = try run("remember", "kb", "the cache is redis", "--id", "cache")
        #expect(try run("sem", "upsert", "kb", "the cache is memcached", "--id", "cache").status == 0)
        let recalled = try Self.json(try run("sem", "search", "kb", "which cache do we use", "-k", "1", "-o", "json"))
        #expect(recalled["hits"]?.arrayValue?.first?["text"] == "the cache is memcached")
        #expect(try Self.json(try run("sem", "get", "kb", "cache", "--history", "-o", "json"))["history"]?.arrayValue?.count == 1)
        let versions = try run("sem", "history", "kb", "cache")
        #expect(versions.status == 0 && versions.stdout.contains("the cache is redis") && versions.stdout.contains("yes"))
        #expect(try run("sem", "del", "kb", "cache").status == 0)
        #expect(try run("sem", "get", "kb", "cache").status == 1)
        #expect(try run("sem", "del", "kb", "cache").status == 1)

        // Claims: acquire, a second agent is CLAIMED (2), renew, list, release.
        let acquired = try Self.json(try run("claim", "acquire", "wf/9", "build", "--ttl", "60000", "--agent", "a", "-o", "json"))
        let token = try #require(acquired["token"]?.int64Value)
        let busy = try run("claim", "acquire", "wf/9", "build", "--ttl", "60000", "--agent", "b")
        #expect(busy.status == 2 && busy.stderr.contains("CLAIMED"), "\(busy.stderr)")
        #expect(try run("claim", "renew", "wf/9", "build", "\(token)", "--ttl", "60000", "--agent", "a").status == 0)
        let listed = try run("claim", "ls", "wf/9")
        #expect(listed.stdout.contains("build") && listed.stdout.contains("\(token)"))
        #expect(try run("claim", "release", "wf/9", "build", "\(token)", "--agent", "a").status == 0)
        #expect(try run("claim", "release", "wf/9", "build", "\(token)", "--agent", "a").status == 1)

        // Tasks: a refused move is exit 2; a fence needs both halves.
        #expect(try run("task", "move", "wf/9", "t1", "pending").status == 0)
        #expect(try run("task", "move", "wf/9", "t1", "done", "--from", "running").status == 2)
        #expect(try run("task", "move", "wf/9", "t1", "running", "--fence-token", "5").status == 64)
        #expect(try Self.json(try run("task", "get", "wf/9", "t1", "-o", "json"))["state"] == "pending")

        // Inbox: post to b, b reads and acknowledges.
        let posted = try Self.json(try run("inbox", "post", "wf/9", "b", "review_request", "{\"pr\":7}", "--agent", "a", "-o", "json"))
        let id = try #require(posted["id"]?.stringValue)
        let unread = try run("inbox", "read", "wf/9", "--unacked", "--agent", "b")
        #expect(unread.stdout.contains(id) && unread.stdout.contains("review_request"))
        #expect(try run("inbox", "ack", "wf/9", id, "--agent", "b").status == 0)
        #expect(try Self.json(try run("inbox", "read", "wf/9", "--unacked", "--agent", "b", "-o", "json"))["entries"]?.arrayValue?.isEmpty == true)
    }

    @Test func watchStreamsChangesAndResumesFromARevision() throws {
        let daemon = try Daemon()
        defer { daemon.stop() }
        let first = try Self.json(try daemon.cli(["set", "wf/w", "a", "1", "-o", "json"]))
        _ = try daemon.cli(["set", "wf/w", "b", "2"])
        _ = try daemon.cli(["del", "wf/w", "a"])
        // Replayed from the first write's revision: three events, in order, then it stops.
        let rev = try #require(first["version"]?.int64Value)
        let table = try daemon.cli(["watch", "wf/w", "--from-rev", "\(rev)", "--count", "3"])
        #expect(table.status == 0, "\(table.stderr)")
        let lines = table.stdout.split(separator: "\n").map { $0.split(separator: "\t").map(String.init) }
        #expect(lines.map { $0.count > 4 ? $0[4] : "" } == ["a", "b", "a"], "\(table.stdout)")
        #expect(lines.map { $0.count > 2 ? $0[2] : "" } == ["set", "set", "del"], "\(table.stdout)")
        let json = try daemon.cli(["watch", "wf/w", "--from-rev", "\(rev + 1)", "--count", "1", "-o", "json"])
        #expect(try Self.json(json)["key"] == "b")
    }

    @Test func theShellCompletionScriptsComeFromTheCommands() throws {
        for shell in ["bash", "zsh", "fish"] {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: Daemon.binary("mnemo"))
            p.arguments = ["--generate-completion-script", shell]
            let out = Pipe()
            p.standardOutput = out
            try p.run()
            let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            #expect(p.terminationStatus == 0 && text.contains("claim") && text.contains("inbox"), "\(shell)")
        }
    }
}
