import Foundation
import Testing

@Suite("mnemo barrier, vote, leader: exit codes a script can test")
struct AgreementCLITests {
    @Test func exitCodesSayWhetherTheAgreementHolds() throws {
        let daemon = try Daemon()
        defer { daemon.stop() }
        func mnemo(_ args: String...) throws -> Int32 { try daemon.cli(args + ["-o", "json"]).status }

        #expect(try mnemo("barrier", "arrive", "wf/1", "gate", "2", "--agent", "a", "--value", "{\"x\":1}") == 1)  // waiting
        #expect(try mnemo("barrier", "arrive", "wf/1", "gate", "2", "--agent", "b") == 0)  // opened
        #expect(try mnemo("barrier", "get", "wf/1", "gate") == 0)

        #expect(try mnemo("vote", "open", "wf/1", "ship", "--voter", "a", "--voter", "b", "--payload", "v1") == 0)
        #expect(try mnemo("vote", "cast", "wf/1", "ship", "yes", "--agent", "a") == 1)  // still open
        #expect(try mnemo("vote", "cast", "wf/1", "ship", "maybe", "--agent", "a") == 2)  // refused: -32602
        #expect(try mnemo("vote", "cast", "wf/1", "ship", "yes", "--agent", "c") == 2)  // FORBIDDEN: not a voter
        #expect(try mnemo("vote", "cast", "wf/1", "ship", "yes", "--agent", "b") == 0)  // accepted
        #expect(try mnemo("vote", "get", "wf/1", "ship") == 0)

        #expect(try mnemo("leader", "get", "wf/1", "sched") == 1)  // nobody leads
        #expect(try mnemo("leader", "campaign", "wf/1", "sched", "--ttl", "60000", "--agent", "a") == 0)
        #expect(try mnemo("leader", "campaign", "wf/1", "sched", "--ttl", "60000", "--agent", "b") == 1)
        #expect(try mnemo("leader", "get", "wf/1", "sched") == 0)
        let led = try daemon.cli(["leader", "get", "wf/1", "sched", "-o", "json"]).stdout
        let token = try #require(led.split(separator: ",").first { $0.hasPrefix("\"token\":") }?.dropFirst(8))
        #expect(try mnemo("leader", "resign", "wf/1", "sched", String(token), "--agent", "a") == 0)
        #expect(try mnemo("leader", "resign", "wf/1", "sched", String(token), "--agent", "a") == 1)  // already ended
    }
}
