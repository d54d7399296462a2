import MnemoCore
import MnemoProtocol
import Testing

@Suite("WorkingMemory: task state machine")
struct WorkingMemoryTaskTests {
    /// The contract's table, written out independently of `TaskState.canMove`.
    static let allowed: [TaskState: Set<TaskState>] = [
        .pending: [.claimed, .cancelled],
        .claimed: [.running, .pending, .cancelled],
        .running: [.succeeded, .failed, .pending, .cancelled],
        .failed: [.pending],
        .succeeded: [],
        .cancelled: [],
    ]

    /// A way to reach each state from nothing.
    static let path: [TaskState: [TaskState]] = [
        .pending: [.pending],
        .claimed: [.pending, .claimed],
        .running: [.pending, .claimed, .running],
        .succeeded: [.pending, .claimed, .running, .succeeded],
        .failed: [.pending, .claimed, .running, .failed],
        .cancelled: [.pending, .cancelled],
    ]

    static let pairs: [(TaskState, TaskState)] = TaskState.allCases.flatMap { a in TaskState.allCases.map { (a, $0) } }

    @Test("every pair of states: allowed moves succeed, every other is INVALID_TRANSITION with from/to; nothing changes",
          arguments: pairs)
    func transitionTable(from: TaskState, to: TaskState) throws {
        let (wm, time) = makeStore()
        try wm.walk("ns", "t", Self.path[from]!)
        #expect(wm.task(ns: "ns", task: "t")?.state == from)
        let before = try #require(wm.task(ns: "ns", task: "t"))
        let revBefore = wm.revision
        time.advance(ms: 1)
        if Self.allowed[from]!.contains(to) {
            let r = try wm.transition(ns: "ns", task: "t", to: to, from: nil, fence: nil, by: bob)
            #expect(r.state == to)
            #expect(r.rev == revBefore + 1)
            let after = try #require(wm.task(ns: "ns", task: "t"))
            #expect(after.state == to)
            #expect(after.rev == r.rev)
            #expect(after.history.count == before.history.count + 1)
            #expect(after.history.last?.from == from)
            #expect(after.history.last?.to == to)
        } else {
            let e = try #require(wireError { () throws(WireError) in
                try wm.transition(ns: "ns", task: "t", to: to, from: nil, fence: nil, by: bob)
            })
            #expect(e.code == -32000)
            #expect(e.appCode == .invalidTransition)
            #expect(e.detail("from") == .string(from.rawValue))
            #expect(e.detail("to") == .string(to.rawValue))
            #expect(wm.task(ns: "ns", task: "t") == before)
            #expect(wm.revision == revBefore)
        }
    }

    @Test("the table has exactly the contract's 10 allowed moves")
    func tableSize() {
        let count = Self.pairs.filter { Self.allowed[$0.0]!.contains($0.1) }.count
        #expect(count == 10)
        for (a, b) in Self.pairs { #expect(a.canMove(to: b) == Self.allowed[a]!.contains(b), "\(a) -> \(b)") }
    }

    @Test("a new task can only become pending; anything else is INVALID_TRANSITION with from null and nothing is created",
          arguments: TaskState.allCases)
    func newTask(to: TaskState) throws {
        let (wm, _) = makeStore()
        if to == .pending {
            let r = try wm.transition(ns: "ns", task: "t", to: .pending, from: nil, fence: nil, by: alice)
            #expect(r == (.pending, 1))
            #expect(wm.task(ns: "ns", task: "t")?.history.map(\.from) == [nil])
        } else {
            let e = try #require(wireError { () throws(WireError) in
                try wm.transition(ns: "ns", task: "t", to: to, from: nil, fence: nil, by: alice)
            })
            #expect(e.appCode == .invalidTransition)
            #expect(e.detail("from") == .null)
            #expect(e.detail("to") == .string(to.rawValue))
            #expect(wm.task(ns: "ns", task: "t") == nil)
            #expect(wm.revision == 0)
            #expect(wm.stats.tasks == 0)
        }
    }

    @Test("from equal to the current state is accepted")
    func fromMatches() throws {
        let (wm, _) = makeStore()
        try wm.walk("ns", "t", [.pending])
        let r = try wm.transition(ns: "ns", task: "t", to: .claimed, from: .pending, fence: nil, by: alice)
        #expect(r.state == .claimed)
        _ = try wm.transition(ns: "ns", task: "t", to: .running, from: .claimed, fence: nil, by: alice)
        #expect(wm.task(ns: "ns", task: "t")?.state == .running)
    }

    @Test("a from that is not the current state is CONFLICT with the task's version and state (even if the move would be allowed)")
    func fromMismatch() throws {
        let (wm, _) = makeStore()
        try wm.walk("ns", "t", [.pending, .claimed])
        let rec = try #require(wm.task(ns: "ns", task: "t"))
        let revBefore = wm.revision
        for (from, to) in [(TaskState.pending, TaskState.claimed), (.running, .succeeded), (.pending, .cancelled),
                           (.succeeded, .pending)] {
            let e = try #require(wireError { () throws(WireError) in
                try wm.transition(ns: "ns", task: "t", to: to, from: from, fence: nil, by: bob)
            })
            #expect(e.appCode == .conflict)
            #expect(e.detail("version") == .int(rec.rev))
            #expect(e.detail("state") == "claimed")
        }
        #expect(wm.task(ns: "ns", task: "t") == rec)
        #expect(wm.revision == revBefore)
    }

    @Test("from on a task that does not exist is CONFLICT with version and state null")
    func fromOnNewTask() throws {
        let (wm, _) = makeStore()
        let e = try #require(wireError { () throws(WireError) in
            try wm.transition(ns: "ns", task: "t", to: .pending, from: .pending, fence: nil, by: bob)
        })
        #expect(e.appCode == .conflict)
        #expect(e.detail("version") == .null)
        #expect(e.detail("state") == .null)
        #expect(wm.task(ns: "ns", task: "t") == nil)
    }

    @Test("history records every step in order with from, to and provenance (agent, principal, rev, at from the clock, task)")
    func history() throws {
        let (wm, time) = makeStore()
        let steps: [(TaskState, Caller)] = [(.pending, alice), (.claimed, bob), (.running, bob), (.failed, bob),
                                            (.pending, carol), (.claimed, alice), (.running, alice), (.succeeded, alice)]
        var expected: [(from: TaskState?, to: TaskState, agent: String, principal: String, rev: Int64, at: Int64)] = []
        var previous: TaskState? = nil
        for (i, (to, caller)) in steps.enumerated() {
            time.advance(ms: Int64(10 * (i + 1)))
            try wm.put("ns", "noise\(i)", 1)  // revisions taken by other writes in between
            let r = try wm.transition(ns: "ns", task: "t", to: to, from: nil, fence: nil, by: caller)
            expected.append((previous, to, caller.agent, caller.principal, r.rev, time.nowMs()))
            previous = to
        }
        let rec = try #require(wm.task(ns: "ns", task: "t"))
        #expect(rec.state == .succeeded)
        #expect(rec.rev == expected.last?.rev)
        #expect(rec.history.count == steps.count)
        for (step, want) in zip(rec.history, expected) {
            #expect(step.from == want.from)
            #expect(step.to == want.to)
            #expect(step.provenance.agent == want.agent)
            #expect(step.provenance.principal == want.principal)
            #expect(step.provenance.rev == want.rev)
            #expect(step.provenance.at == want.at)
            #expect(step.provenance.task == "t")
        }
        #expect(rec.history.map(\.provenance.rev) == rec.history.map(\.provenance.rev).sorted())
        #expect(Set(rec.history.map(\.provenance.rev)).count == steps.count)
    }

    @Test("tasks are per namespace: the same name in two namespaces is two tasks")
    func perNamespace() throws {
        let (wm, _) = makeStore()
        try wm.walk("a", "t", [.pending, .claimed])
        try wm.walk("a/sub", "t", [.pending])
        #expect(wm.task(ns: "a", task: "t")?.state == .claimed)
        #expect(wm.task(ns: "a/sub", task: "t")?.state == .pending)
        #expect(wm.task(ns: "b", task: "t") == nil)
    }

    @Test("the expiry of the task's claim moves claimed and running back to pending, stamped by mnemod",
          arguments: [TaskState.claimed, .running])
    func claimExpiryReturnsToPending(state: TaskState) throws {
        let (wm, time) = makeStore()
        try wm.walk("ns", "t", Self.path[state]!, by: bob)
        let (token, _) = try wm.grant("ns", "t", ttl: 100, by: bob)
        time.advance(ms: 99)
        #expect(wm.sweepExpired(max: 100).removed == 0)
        #expect(wm.task(ns: "ns", task: "t")?.state == state)
        time.advance(ms: 1)
        let revBefore = wm.revision
        #expect(wm.sweepExpired(max: 100).removed == 1)
        let rec = try #require(wm.task(ns: "ns", task: "t"))
        #expect(rec.state == .pending)
        #expect(rec.history.count == Self.path[state]!.count + 1)
        let step = try #require(rec.history.last)
        #expect(step.from == state)
        #expect(step.to == .pending)
        #expect(step.provenance.agent == "mnemod")
        #expect(step.provenance.rev == revBefore + 1)
        #expect(step.provenance.rev > token)
        #expect(step.provenance.at == time.nowMs())
        #expect(step.provenance.task == "t")
        #expect(rec.rev == step.provenance.rev)
        // and from pending it can be claimed again
        _ = try wm.transition(ns: "ns", task: "t", to: .claimed, from: .pending, fence: nil, by: alice)
    }

    @Test("the task returns to pending when its claim's expiry is noticed by a read, without any sweep")
    func claimExpiryNoticedOnRead() throws {
        let (wm, time) = makeStore()
        try wm.walk("ns", "t", [.pending, .claimed, .running])
        _ = try wm.grant("ns", "t", ttl: 100)
        time.advance(ms: 100)
        let rec = try #require(wm.task(ns: "ns", task: "t"))
        #expect(rec.state == .pending)
        #expect(rec.history.last?.provenance.agent == "mnemod")
        // a transition that expected the old state now conflicts
        let e = try #require(wireError { () throws(WireError) in
            try wm.transition(ns: "ns", task: "t", to: .succeeded, from: .running, fence: nil, by: alice)
        })
        #expect(e.appCode == .conflict)
        #expect(e.detail("state") == "pending")
    }

    @Test("a transition notices the expired claim first: running -> succeeded is refused once the claim has expired")
    func claimExpiryNoticedOnTransition() throws {
        let (wm, time) = makeStore()
        try wm.walk("ns", "t", [.pending, .claimed, .running])
        _ = try wm.grant("ns", "t", ttl: 100)
        time.advance(ms: 100)
        let e = try #require(wireError { () throws(WireError) in
            try wm.transition(ns: "ns", task: "t", to: .succeeded, from: nil, fence: nil, by: alice)
        })
        #expect(e.appCode == .invalidTransition)
        #expect(e.detail("from") == "pending")
        #expect(wm.task(ns: "ns", task: "t")?.history.map(\.to) == [.pending, .claimed, .running, .pending])
    }

    @Test("a claim's expiry leaves pending, succeeded, failed and cancelled tasks alone",
          arguments: [TaskState.pending, .succeeded, .failed, .cancelled])
    func claimExpiryLeavesOtherStates(state: TaskState) throws {
        let (wm, time) = makeStore()
        try wm.walk("ns", "t", Self.path[state]!)
        let before = try #require(wm.task(ns: "ns", task: "t"))
        _ = try wm.grant("ns", "t", ttl: 100)
        time.advance(ms: 100)
        #expect(wm.sweepExpired(max: 100).removed == 1)
        #expect(wm.task(ns: "ns", task: "t") == before)
    }

    @Test("only the task's own claim counts: same resource in another namespace, another resource, or a release")
    func onlyItsOwnClaimExpiry() throws {
        let (wm, time) = makeStore()
        try wm.walk("ns", "t", [.pending, .claimed])
        _ = try wm.grant("other", "t", ttl: 100)
        _ = try wm.grant("ns/sub", "t", ttl: 100)
        _ = try wm.grant("ns", "t2", ttl: 100)
        let (own, _) = try wm.grant("ns", "t", ttl: 1000)
        time.advance(ms: 100)
        #expect(wm.sweepExpired(max: 100).removed == 3)
        #expect(wm.task(ns: "ns", task: "t")?.state == .claimed)
        // a release is not an expiry: the holder said it is done with the claim
        #expect(try wm.release(ns: "ns", resource: "t", token: own, by: alice))
        #expect(wm.task(ns: "ns", task: "t")?.state == .claimed)
        #expect(wm.task(ns: "ns", task: "t")?.history.count == 2)
    }

    @Test("fence on transition: the live token moves the task; a stale or unknown one is FENCED and changes nothing")
    func fencedTransition() throws {
        let (wm, time) = makeStore()
        try wm.walk("ns", "t", [.pending])
        let (t1, _) = try wm.grant("ns", "t", ttl: 100)
        _ = try wm.transition(ns: "ns", task: "t", to: .claimed, from: .pending, fence: Lease(resource: "t", token: t1), by: alice)
        time.advance(ms: 100)  // alice's claim expires: the task goes back to pending
        let (t2, _) = try wm.grant("ns", "t", ttl: 1000, by: bob)
        #expect(wm.task(ns: "ns", task: "t")?.state == .pending)
        let before = try #require(wm.task(ns: "ns", task: "t"))
        let revBefore = wm.revision
        let e = try #require(wireError { () throws(WireError) in
            try wm.transition(ns: "ns", task: "t", to: .claimed, from: nil, fence: Lease(resource: "t", token: t1), by: alice)
        })
        #expect(e.appCode == .fenced)
        #expect(e.detail("token") == .int(t2))
        #expect(e.detail("given_token") == .int(t1))
        let e2 = try #require(wireError { () throws(WireError) in
            try wm.transition(ns: "ns", task: "t", to: .claimed, from: nil, fence: Lease(resource: "nope", token: t2), by: bob)
        })
        #expect(e2.appCode == .fenced)
        #expect(wm.task(ns: "ns", task: "t") == before)
        #expect(wm.revision == revBefore)
        let r = try wm.transition(ns: "ns", task: "t", to: .claimed, from: .pending, fence: Lease(resource: "t", token: t2), by: bob)
        #expect(r == (.claimed, revBefore + 1))
    }

    @Test("an empty or oversized task name is -32602 naming task")
    func badTaskName() throws {
        let (wm, _) = makeStore()
        for bad in ["", String(repeating: "t", count: Limits.maxIdentifierBytes + 1)] {
            let e = try #require(wireError { () throws(WireError) in
                try wm.transition(ns: "ns", task: bad, to: .pending, from: nil, fence: nil, by: alice)
            })
            #expect(e.code == -32602)
            #expect(e.detail("field") == "task")
        }
        #expect(wm.revision == 0)
    }
}
