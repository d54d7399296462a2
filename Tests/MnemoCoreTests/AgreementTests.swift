import Foundation
import MnemoProtocol
@testable import MnemoCore
import Testing

@Suite("Agreement: barriers, votes and leaders in the store")
struct AgreementTests {
    static let ns = "wf/1"

    @Test("a barrier opens at its parties, breaks at its deadline, and both survive a snapshot and a replay")
    func barrierReplay() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let time = ManualTime()
        var wm = try JournalTests.open(dir, time)
        let first = try wm.arrive(ns: Self.ns, name: "g", parties: 2, generation: nil, ttlMs: 1000, value: bytes(1), by: alice, onEnd: nil)
        #expect(first.view.state == .waiting && first.view.generation == 1)
        let opened = try wm.arrive(ns: Self.ns, name: "g", parties: 2, generation: nil, ttlMs: 1000, value: bytes(2), by: bob, onEnd: nil)
        #expect(opened.view.state == .open && opened.view.arrivals.map(\.agent) == ["a", "b"])
        _ = try wm.arrive(ns: Self.ns, name: "g", parties: 2, generation: nil, ttlMs: 1000, value: bytes(3), by: alice, onEnd: nil)
        wm.snapshot()
        _ = try wm.arrive(ns: Self.ns, name: "late", parties: 3, generation: nil, ttlMs: 500, value: bytes(4), by: bob, onEnd: nil)
        let before = (wm.barrier(ns: Self.ns, name: "g"), wm.barrier(ns: Self.ns, name: "late"))
        wm.close()
        wm = try JournalTests.open(dir, time)  // the snapshot, then the log after it
        #expect(wm.barrier(ns: Self.ns, name: "g") == before.0 && wm.barrier(ns: Self.ns, name: "late") == before.1)
        time.advance(ms: 600)
        _ = wm.sweepExpired(max: 100)  // the sweep breaks it, without anyone asking
        let late = try #require(wm.barrier(ns: Self.ns, name: "late"))
        #expect(late.generation == 2 && late.finished.last?.state == .broken)
        #expect(throws: WireError.self) {
            _ = try wm.arrive(ns: Self.ns, name: "late", parties: 3, generation: 1, ttlMs: 500, value: bytes(5), by: bob, onEnd: nil)
        }
        wm.close()
    }

    @Test("a vote is decided once; its token fences until a newer decision; proposals and leaders survive a replay")
    func voteReplayAndFence() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let time = ManualTime()
        var wm = try JournalTests.open(dir, time)
        _ = try wm.openVote(ns: Self.ns, proposal: "p", voters: ["a", "b"], quorum: nil, ttlMs: 10_000, payload: bytes(["v": 1]), by: alice)
        _ = try wm.castVote(ns: Self.ns, proposal: "p", yes: true, reason: nil, by: alice)
        let decided = try wm.castVote(ns: Self.ns, proposal: "p", yes: true, reason: "ok", by: bob)
        let token = try #require(decided.authority)
        #expect(decided.status == .accepted && decided.decidedRev == token)
        #expect(throws: WireError.self) { _ = try wm.castVote(ns: Self.ns, proposal: "p", yes: true, reason: nil, by: carol) }
        let lead = try wm.acquire(ns: Self.ns, resource: "sched", ttlMs: 60_000, by: alice, value: bytes(["addr": "x"]),
                                  reentrant: true, onEnd: nil)
        guard case .granted(let leaderToken, _) = lead.outcome else { Issue.record("not elected"); return }
        wm.close()
        wm = try JournalTests.open(dir, time)
        let p = try #require(wm.proposal(ns: Self.ns, name: "p").proposal)
        #expect(p == decided)
        let leader = try #require(wm.claim(ns: Self.ns, resource: "sched"))
        #expect(leader.token == leaderToken && leader.value == bytes(["addr": "x"]) && leader.since == time.nowMs())
        _ = try wm.set(WorkingMemory.Write(ns: Self.ns, key: "k", value: bytes(1), fence: Lease(resource: "p", token: token)), by: alice)
        _ = try wm.openVote(ns: Self.ns, proposal: "p", voters: ["a", "b"], quorum: 1, ttlMs: 100, payload: bytes(.null), by: alice)
        _ = try wm.set(WorkingMemory.Write(ns: Self.ns, key: "k", value: bytes(2), fence: Lease(resource: "p", token: token)), by: alice)  // round 2 is undecided
        time.advance(ms: 200)  // round 2 is rejected at its deadline: a newer decision
        #expect(throws: WireError.self) { _ = try wm.set(WorkingMemory.Write(ns: Self.ns, key: "k", value: bytes(3), fence: Lease(resource: "p", token: token)), by: alice) }
        #expect(wm.proposal(ns: Self.ns, name: "p").proposal?.status == .rejected)
        wm.close()
    }
}
