import Foundation
import MnemoClient
import MnemoProtocol
import Synchronization
import Testing

@Suite("durability: restarts and kill -9")
struct DurabilityTests {
    @Test(arguments: ["normal", "strict"])
    func everythingAcknowledgedSurvivesARestart(mode: String) throws {
        let daemon = try Daemon(config: "durability = \"\(mode)\"\n")
        let c = try daemon.client("agent-1")
        _ = try c.call("wm.set", ["ns": "wf/1", "key": "plan", "value": ["steps": [1, 2, 3]], "task": "t9"])
        _ = try c.call("wm.set", ["ns": "wf/1", "key": "short", "value": 1, "ttl_ms": 200])
        _ = try c.call("wm.set", ["ns": "wf/1", "key": "gone", "value": 1])
        _ = try c.call("wm.del", ["ns": "wf/1", "key": "gone"])
        let claim = try c.call("claim.acquire", ["ns": "wf/1", "resource": "job", "ttl_ms": 600_000])
        let token = try #require(claim["token"]?.int64Value)
        _ = try c.call("wm.set", ["ns": "wf/1", "key": "leased", "value": true, "lease": ["resource": "job", "token": .int(token)]])
        _ = try c.call("result.put", ["ns": "wf/1", "task": "job", "idempotency_key": "r1", "value": "done"])
        _ = try c.call("task.transition", ["ns": "wf/1", "task": "job", "to": "pending"])
        _ = try c.call("task.transition", ["ns": "wf/1", "task": "job", "to": "claimed"])
        let posted = try c.call("inbox.post", ["ns": "wf/1", "to": "agent-2", "type": "note", "content": "hi"])
        let before = try c.call("wm.get", ["ns": "wf/1", "key": "plan"])
        let rev = try #require(try c.call("admin.health")["rev"]?.int64Value)
        usleep(300_000)  // let "short" expire while the daemon runs or is down
        daemon.kill()

        let again = try daemon.restarted(config: "durability = \"\(mode)\"\n")
        let d = try again.client("agent-2")
        let after = try d.call("wm.get", ["ns": "wf/1", "key": "plan"])
        #expect(after["value"] == before["value"])
        #expect(after["version"] == before["version"])
        #expect(after["provenance"] == before["provenance"])
        #expect(try d.call("wm.get", ["ns": "wf/1", "key": "short"])["found"] == false)
        #expect(try d.call("wm.get", ["ns": "wf/1", "key": "gone"])["found"] == false)
        #expect(try d.call("wm.get", ["ns": "wf/1", "key": "leased"])["found"] == true)
        let claims = try d.call("claim.list", ["ns": "wf/1"])["claims"]?.arrayValue ?? []
        #expect(claims.first?["token"]?.int64Value == token)
        #expect(try d.call("result.put", ["ns": "wf/1", "task": "job", "idempotency_key": "r1", "value": "done"])["stored"] == false)
        #expect(try d.call("task.get", ["ns": "wf/1", "task": "job"])["state"] == "claimed")
        #expect(try d.call("inbox.read", ["ns": "wf/1"])["entries"]?.arrayValue?.first?["id"] == posted["id"])
        #expect((try d.call("admin.health")["rev"]?.int64Value ?? 0) >= rev)
        // New writes continue above the old revision and tokens.
        let next = try d.call("wm.set", ["ns": "wf/1", "key": "after", "value": 1])
        #expect((next["rev"]?.int64Value ?? 0) > rev)
    }

    @Test func volatileModeStartsEmpty() throws {
        let daemon = try Daemon(config: "durability = \"volatile\"\n")
        _ = try daemon.client().call("wm.set", ["ns": "a", "key": "k", "value": 1])
        daemon.kill()
        let again = try daemon.restarted(config: "durability = \"volatile\"\n")
        #expect(try again.client().call("wm.get", ["ns": "a", "key": "k"])["found"] == false)
    }

    /// Writers run until a kill -9 at a random moment; after a restart every acknowledged
    /// write is there, and neither the revision nor fencing tokens went down. Repeated.
    @Test(arguments: ["normal", "strict"])
    func killNineUnderConcurrentWritersLosesNothingAcknowledged(mode: String) throws {
        var daemon = try Daemon(config: "durability = \"\(mode)\"\n")
        var highestRev: Int64 = 0
        var highestToken: Int64 = 0
        for round in 0..<10 {
            let acked = Mutex<[String: Int64]>([:])  // key -> last acknowledged value
            let maxRev = Atomic<Int64>(0)
            let maxToken = Atomic<Int64>(0)
            let stop = Atomic<Bool>(false)
            let current = daemon
            let writers = (0..<4).map { w in
                Thread {
                    guard let c = try? current.client("writer-\(w)") else { return }
                    var i: Int64 = 0
                    while !stop.load(ordering: .relaxed) && i < 100_000 {
                        i += 1
                        let key = "w\(w)-k\(i % 8)"
                        guard let r = try? c.call("wm.set", ["ns": "crash", "key": .string(key), "value": .int(i)]) else { return }
                        acked.withLock { $0[key] = i }
                        _ = maxRev.max(r["rev"]?.int64Value ?? 0, ordering: .relaxed)
                        if i % 16 == 0, let t = try? c.call("claim.acquire", ["ns": "crash", "resource": .string("r\(w)"), "ttl_ms": 600_000]),
                            let token = t["token"]?.int64Value
                        {
                            _ = maxToken.max(token, ordering: .relaxed)
                            _ = try? c.call("claim.release", ["ns": "crash", "resource": .string("r\(w)"), "token": .int(token)])
                        }
                    }
                }
            }
            for t in writers { t.start() }
            usleep(UInt32(150_000 + (round * 97_000) % 250_000))
            daemon.kill()
            stop.store(true, ordering: .relaxed)
            usleep(50_000)
            daemon = try daemon.restarted(config: "durability = \"\(mode)\"\n")
            let c = try daemon.client("checker")
            #expect(acked.withLock { $0.count } > 0, "round \(round): no write was acknowledged before the kill")
            var lost = 0
            for (key, value) in acked.withLock({ $0 }) {
                let got = try c.call("wm.get", ["ns": "crash", "key": .string(key)])["value"]?.int64Value ?? -1
                // The stored value is the last acknowledged one or a later, unacknowledged one.
                if got < value { lost += 1 }
            }
            #expect(lost == 0, "round \(round): \(lost) acknowledged writes lost")
            let rev = try #require(try c.call("admin.health")["rev"]?.int64Value)
            #expect(rev >= maxRev.load(ordering: .relaxed))
            #expect(rev >= highestRev)
            highestRev = rev
            let fresh = try c.call("claim.acquire", ["ns": "crash", "resource": .string("fresh-\(round)"), "ttl_ms": 1000])
            let token = try #require(fresh["token"]?.int64Value)
            #expect(token > maxToken.load(ordering: .relaxed))
            #expect(token > highestToken)
            highestToken = token
        }
    }

    @Test func snapshotsCompactTheJournalAndRecoverTheSameState() throws {
        let config = "[working]\nsnapshot_bytes = 1048576\nsweep_interval_ms = 20\n"
        let daemon = try Daemon(config: config)
        let c = try daemon.client()
        var calls: [(String, JSON)] = []
        for i in 0..<6000 {
            calls.append(("wm.set", ["ns": "snap", "key": .string("k\(i % 500)"), "value": .string(String(repeating: "x", count: 200) + "\(i)")]))
        }
        for chunk in stride(from: 0, to: calls.count, by: 500) { _ = try c.pipeline(Array(calls[chunk..<min(chunk + 500, calls.count)])) }
        // The snapshot is written in the background: wait for it (and the old journals'
        // removal), up to 10 s.
        let working = { try FileManager.default.contentsOfDirectory(atPath: daemon.dataDir + "/working") }
        for _ in 0..<1000 where try !(working().contains { $0.hasPrefix("snapshot-") } && working().filter { $0.hasPrefix("journal-") }.count <= 2) {
            usleep(10_000)
        }
        let files = try working()
        #expect(files.contains { $0.hasPrefix("snapshot-") })
        #expect(files.filter { $0.hasPrefix("journal-") }.count <= 2)
        let before = try c.call("wm.get", ["ns": "snap", "key": "k499"])
        daemon.kill()
        let again = try daemon.restarted(config: config)
        let d = try again.client()
        #expect(try d.call("wm.get", ["ns": "snap", "key": "k499"]) == before)
        #expect(try d.call("admin.stats")["working"]?["keys"]?.int64Value == 500)
    }
}
