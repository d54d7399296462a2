import Foundation
import MnemoClient
import MnemoProtocol
import Synchronization
import Testing

@Suite("claims, results, tasks, inbox and watches against a real mnemod")
struct CoordinationTests {
    let daemon: Daemon
    init() throws { daemon = try Daemon() }

    @Test func twentyProcessesRacingForOneClaimGetOneGrant() throws {
        let processes = (0..<20).map { i -> (Process, Pipe) in
            let p = Process()
            p.executableURL = URL(fileURLWithPath: Daemon.binary("mnemo"))
            p.arguments = ["call", "--socket", daemon.socket, "--agent", "racer-\(i)", "-o", "json", "claim.acquire",
                           "{\"ns\":\"wf/1\",\"resource\":\"task-7\",\"ttl_ms\":60000}"]
            let out = Pipe()
            p.standardOutput = out
            p.standardError = Pipe()
            return (p, out)
        }
        for (p, _) in processes { try p.run() }
        var granted: [Int64] = []
        var refused = 0
        for (p, out) in processes {
            let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            if p.terminationStatus == 0, let token = try? JSONParser.parse(text.trimmingCharacters(in: .whitespacesAndNewlines))["token"]?.int64Value {
                granted.append(token)
            } else if p.terminationStatus == 2 {
                refused += 1
            }
        }
        #expect(granted.count == 1)
        #expect(refused == 19)
        let claims = try daemon.client().call("claim.list", ["ns": "wf/1"])["claims"]?.arrayValue ?? []
        #expect(claims.count == 1)
        #expect(claims.first?["token"]?.int64Value == granted.first)
    }

    @Test func aHolderPausedPastItsLeaseIsFenced() throws {
        let a = try daemon.client("worker-a")
        let b = try daemon.client("worker-b")
        let first = try a.call("claim.acquire", ["ns": "wf/2", "resource": "t1", "ttl_ms": 150])
        let tokenA = try #require(first["token"]?.int64Value)
        _ = try a.call("wm.set", ["ns": "wf/2", "key": "scratch", "value": "a's notes",
                                  "lease": ["resource": "t1", "token": .int(tokenA)]])
        _ = try a.call("wm.set", ["ns": "wf/2", "key": "out", "value": 1, "fence": ["resource": "t1", "token": .int(tokenA)]])
        usleep(300_000)  // a stalls past its lease
        // The lease ended with the claim: the key is gone.
        #expect(try b.call("wm.get", ["ns": "wf/2", "key": "scratch"])["found"] == false)
        let second = try b.call("claim.acquire", ["ns": "wf/2", "resource": "t1", "ttl_ms": 60000])
        let tokenB = try #require(second["token"]?.int64Value)
        #expect(tokenB > tokenA)
        let late = wireError { try a.call("wm.set", ["ns": "wf/2", "key": "out", "value": 2, "fence": ["resource": "t1", "token": .int(tokenA)]]) }
        #expect(late?.appCode == .fenced)
        #expect(late?.detail("token")?.int64Value == tokenB)
        #expect(wireError { try a.call("claim.renew", ["ns": "wf/2", "resource": "t1", "token": .int(tokenA), "ttl_ms": 1000]) }?.appCode == .fenced)
        #expect(try a.call("claim.release", ["ns": "wf/2", "resource": "t1", "token": .int(tokenA)])["released"] == false)
        #expect(try b.call("wm.get", ["ns": "wf/2", "key": "out"])["value"] == 1)
        #expect(try b.call("claim.release", ["ns": "wf/2", "resource": "t1", "token": .int(tokenB)])["released"] == true)
    }

    @Test func waitingForAClaimIsAnsweredWhenItIsReleased() throws {
        let a = try daemon.client("holder")
        let token = try #require(try a.call("claim.acquire", ["ns": "q", "resource": "r", "ttl_ms": 60000])["token"]?.int64Value)
        let b = try daemon.client("waiter")
        let answer = Mutex<JSON?>(nil)
        let waiter = Thread {
            let r = try? b.call("claim.acquire", ["ns": "q", "resource": "r", "ttl_ms": 1000, "wait_ms": 60000])
            answer.withLock { $0 = r }
        }
        waiter.start()
        // Released only once the waiter's call is parked (admin.stats counts it), so the
        // grant below comes from the wake-up, not from an acquire that found the claim free.
        func waiting() throws -> Int64 { try a.call("admin.stats")["connections"]?["waiting"]?.int64Value ?? -1 }
        for _ in 0..<3000 where try waiting() < 1 { usleep(10_000) }
        #expect(try waiting() == 1)
        #expect(answer.withLock { $0 } == nil)
        #expect(try a.call("claim.release", ["ns": "q", "resource": "r", "token": .int(token)])["released"] == true)
        for _ in 0..<3000 where answer.withLock({ $0 }) == nil { usleep(10_000) }
        let got = answer.withLock { $0 }
        #expect(got?["granted"] == true)
        #expect((got?["token"]?.int64Value ?? 0) > token)
        #expect(try waiting() == 0)
        // A wait that runs out is CLAIMED, and a wait on an expiring claim is granted at expiry.
        #expect(wireError { try a.call("claim.acquire", ["ns": "q", "resource": "r", "ttl_ms": 1000, "wait_ms": 100]) }?.appCode == .claimed)
        let afterExpiry = try a.call("claim.acquire", ["ns": "q", "resource": "r", "ttl_ms": 1000, "wait_ms": 5000])
        #expect(afterExpiry["granted"] == true)
    }

    @Test func hundredConcurrentIdenticalResultsStoreOnce() throws {
        let stored = Atomic<Int>(0)
        let replayed = Atomic<Int>(0)
        let other = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 100) { i in
            guard let c = try? daemon.client("w\(i)"),
                let r = try? c.call("result.put", ["ns": "wf/3", "task": "t", "idempotency_key": "k1", "value": ["answer": 42]])
            else {
                other.add(1, ordering: .relaxed)
                return
            }
            if r["stored"] == true { stored.add(1, ordering: .relaxed) } else { replayed.add(1, ordering: .relaxed) }
        }
        #expect(stored.load(ordering: .relaxed) == 1)
        #expect(replayed.load(ordering: .relaxed) == 99)
        #expect(other.load(ordering: .relaxed) == 0)
        let c = try daemon.client()
        // Same value spelled differently is the same value; another value is refused.
        #expect(try c.call("result.put", ["ns": "wf/3", "task": "t", "idempotency_key": "k1", "value": .object([JSONMember("answer", .number("42.0"))])])["stored"] == false)
        #expect(wireError { try c.call("result.put", ["ns": "wf/3", "task": "t", "idempotency_key": "k1", "value": ["answer": 43]]) }?.appCode == .idempotencyMismatch)
        // Scoped by namespace.
        #expect(try c.call("result.put", ["ns": "wf/4", "task": "t", "idempotency_key": "k1", "value": 1])["stored"] == true)
    }

    @Test func everyIllegalTransitionIsRefused() throws {
        let c = try daemon.client()
        let states = ["pending", "claimed", "running", "succeeded", "failed", "cancelled"]
        let allowed: Set<String> = ["pending>claimed", "pending>cancelled", "claimed>running", "claimed>pending",
                                    "claimed>cancelled", "running>succeeded", "running>failed", "running>pending",
                                    "running>cancelled", "failed>pending"]
        // The path that reaches each state from pending.
        let paths: [String: [String]] = ["pending": [], "claimed": ["claimed"], "running": ["claimed", "running"],
                                         "succeeded": ["claimed", "running", "succeeded"], "failed": ["claimed", "running", "failed"],
                                         "cancelled": ["cancelled"]]
        var n = 0
        for from in states {
            for to in states {
                n += 1
                let task = "t\(n)"
                _ = try c.call("task.transition", ["ns": "sm", "task": .string(task), "to": "pending"])
                for step in paths[from] ?? [] { _ = try c.call("task.transition", ["ns": "sm", "task": .string(task), "to": .string(step)]) }
                let e = wireError { try c.call("task.transition", ["ns": "sm", "task": .string(task), "to": .string(to), "from": .string(from)]) }
                if allowed.contains("\(from)>\(to)") {
                    #expect(e == nil, "\(from) -> \(to) should be allowed")
                } else {
                    #expect(e?.appCode == .invalidTransition, "\(from) -> \(to) should be refused")
                    #expect(try c.call("task.get", ["ns": "sm", "task": .string(task)])["state"]?.stringValue == from)
                }
            }
        }
        // A new task can only become pending; a wrong `from` is a CONFLICT.
        #expect(wireError { try c.call("task.transition", ["ns": "sm", "task": "fresh", "to": "running"]) }?.appCode == .invalidTransition)
        _ = try c.call("task.transition", ["ns": "sm", "task": "fresh", "to": "pending"])
        #expect(wireError { try c.call("task.transition", ["ns": "sm", "task": "fresh", "to": "claimed", "from": "running"]) }?.appCode == .conflict)
        let history = try c.call("task.get", ["ns": "sm", "task": "t1"])["history"]?.arrayValue
        #expect(history?.first?["to"] == "pending")
        #expect(history?.first?["provenance"]?["agent"] == "tester")
    }

    @Test func anExpiredClaimReturnsItsTaskToPending() throws {
        let c = try daemon.client()
        _ = try c.call("task.transition", ["ns": "wf/5", "task": "job", "to": "pending"])
        let token = try #require(try c.call("claim.acquire", ["ns": "wf/5", "resource": "job", "ttl_ms": 150])["token"]?.int64Value)
        _ = try c.call("task.transition", ["ns": "wf/5", "task": "job", "to": "claimed", "fence": ["resource": "job", "token": .int(token)]])
        _ = try c.call("task.transition", ["ns": "wf/5", "task": "job", "to": "running", "fence": ["resource": "job", "token": .int(token)]])
        // The lease ends after 150 ms; the sweep then returns the task (waited for, up to 10 s).
        for _ in 0..<1000 where try c.call("task.get", ["ns": "wf/5", "task": "job"])["state"] != "pending" { usleep(10_000) }
        #expect(try c.call("task.get", ["ns": "wf/5", "task": "job"])["state"] == "pending")
        #expect(wireError { try c.call("task.transition", ["ns": "wf/5", "task": "job", "to": "claimed", "fence": ["resource": "job", "token": .int(token)]]) }?.appCode == .fenced)
    }

    @Test func inboxIsDirectionalAndAcknowledged() throws {
        let planner = try daemon.client("planner")
        let worker = try daemon.client("worker")
        let posted = try planner.call("inbox.post", ["ns": "wf/6", "to": "worker", "type": "handoff", "content": ["step": 1]])
        let id = try #require(posted["id"]?.stringValue)
        _ = try planner.call("inbox.post", ["ns": "wf/6", "to": "someone-else", "type": "note", "content": "x"])
        #expect(try planner.call("inbox.read", ["ns": "wf/6"])["entries"]?.arrayValue?.isEmpty == true)
        let entries = try #require(try worker.call("inbox.read", ["ns": "wf/6"])["entries"]?.arrayValue)
        #expect(entries.count == 1)
        #expect(entries.first?["from"] == "planner")
        #expect(entries.first?["content"] == ["step": 1])
        #expect(try planner.call("inbox.ack", ["ns": "wf/6", "ids": [.string(id)]])["acked"] == 0)  // not the addressee
        #expect(try worker.call("inbox.ack", ["ns": "wf/6", "ids": [.string(id)]])["acked"] == 1)
        #expect(try worker.call("inbox.read", ["ns": "wf/6"])["entries"]?.arrayValue?.isEmpty == true)
        #expect(try worker.call("inbox.read", ["ns": "wf/6", "unacked_only": false])["entries"]?.arrayValue?.first?["acked"] == true)
    }

    @Test func watchesSeeChangesAndResumeFromARevision() throws {
        let watcher = try daemon.client("watcher")
        let writer = try daemon.client("writer")
        let sub = try watcher.call("watch.subscribe", ["ns": "wf/7"])
        let watchID = try #require(sub["watch_id"]?.stringValue)
        _ = try writer.call("wm.set", ["ns": "wf/7", "key": "a", "value": 1])
        _ = try writer.call("wm.set", ["ns": "wf/7/sub", "key": "b", "value": 2])
        _ = try writer.call("wm.set", ["ns": "wf/70", "key": "c", "value": 3])  // not under wf/7
        _ = try writer.call("wm.del", ["ns": "wf/7", "key": "a"])
        var events: [JSON] = []
        while let n = try watcher.nextNotification(timeoutMs: 2000) {
            events.append(n["params"] ?? .null)
            if events.count == 3 { break }
        }
        #expect(events.map { $0["kind"]?.stringValue ?? "" } == ["set", "set", "del"])
        #expect(events.map { $0["ns"]?.stringValue ?? "" } == ["wf/7", "wf/7/sub", "wf/7"])
        #expect(events.allSatisfy { $0["watch_id"]?.stringValue == watchID })
        let firstRev = try #require(events.first?["rev"]?.int64Value)
        #expect(try watcher.nextNotification(timeoutMs: 200) == nil)
        // A second watcher resumes from the first event's revision and sees the same events.
        let late = try daemon.client("late")
        _ = try late.call("watch.subscribe", ["ns": "wf/7", "from_rev": .int(firstRev), "tiers": ["wm"]])
        var replayed: [Int64] = []
        while let n = try late.nextNotification(timeoutMs: 1000), replayed.count < 3 {
            replayed.append(n["params"]?["rev"]?.int64Value ?? 0)
        }
        #expect(replayed == events.compactMap { $0["rev"]?.int64Value })
        #expect(try watcher.call("watch.cancel", ["watch_id": .string(watchID)])["cancelled"] == true)
        _ = try writer.call("wm.set", ["ns": "wf/7", "key": "z", "value": 1])
        #expect(try watcher.nextNotification(timeoutMs: 200) == nil)
        #expect(wireError { try watcher.call("watch.subscribe", ["ns": "wf/7", "tiers": ["bogus"]]) }?.code == -32602)
    }
}

@Suite("slow watchers")
struct SlowWatcherTests {
    @Test func aWatcherThatDoesNotReadIsCutOffWithAnError() throws {
        let daemon = try Daemon(config: "[limits]\nmax_pending_output_bytes = 65536\n")
        let watcher = try RawConnection(daemon.socket)
        watcher.send("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"session.hello\",\"params\":{\"agent\":\"slow\"}}\n")
        _ = watcher.readJSON()
        watcher.send("{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"watch.subscribe\",\"params\":{\"ns\":\"busy\"}}\n")
        let watchID = try #require(watcher.readJSON()?["result"]?["watch_id"]?.stringValue)
        // The watcher reads nothing while 20,000 events are produced (far more than the
        // socket buffers and the 64 KiB limit hold).
        let writer = try daemon.client("writer")
        for chunk in 0..<40 {
            let calls = (0..<500).map { i -> (String, JSON) in
                ("wm.set", ["ns": "busy", "key": .string("k\(chunk)-\(i)"), "value": .int(i)])
            }
            _ = try writer.pipeline(calls)
        }
        // The writer was never slowed down, and the watcher gets its events up to the cut,
        // then one error event for its watch, then nothing more.
        var events = 0
        var cutOff: JSON? = nil
        while let line = watcher.readJSON(timeoutMs: 2000) {
            guard let params = line["params"] else { continue }
            if params["error"] != nil {
                cutOff = params
                break
            }
            events += 1
        }
        #expect(events > 0)
        #expect(events < 20_000)
        #expect(cutOff?["watch_id"]?.stringValue == watchID)
        #expect(cutOff?["error"]?["data"]?["code"] == "LIMIT_EXCEEDED")
        _ = try writer.call("wm.set", ["ns": "busy", "key": "after", "value": 1])
        #expect(watcher.readJSON(timeoutMs: 300) == nil)
        // The connection itself still works.
        watcher.send("{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"admin.health\"}\n")
        #expect(watcher.readJSON()?["result"]?["status"] == "ok")
    }
}
