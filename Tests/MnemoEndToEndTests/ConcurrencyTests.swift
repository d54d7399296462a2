import Foundation
import MnemoClient
import MnemoProtocol
import Synchronization
import Testing

@Suite("many clients, one consistent state")
struct ConcurrencyTests {
    /// In `strict` mode replies wait for their fsync, on the loop or the sync thread.
    @Test(arguments: ["normal", "strict"])
    func thirtyTwoClientsCompareAndSetIncrementsAreExact(mode: String) throws {
        let daemon = try Daemon(config: "durability = \"\(mode)\"\n")
        let setup = try daemon.client("setup")
        _ = try setup.call("wm.set", ["ns": "ctr", "key": "n", "value": 0])
        let clients = 32
        let increments = 50
        let conflicts = Atomic<Int>(0)
        let failures = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: clients) { i in
            guard let c = try? daemon.client("worker-\(i)") else {
                failures.add(1, ordering: .relaxed)
                return
            }
            var done = 0
            var attempts = 0
            while done < increments && attempts < 100_000 {
                attempts += 1
                guard let r = try? c.call("wm.get", ["ns": "ctr", "key": "n"]),
                    let value = r["value"]?.int64Value, let version = r["version"]
                else {
                    failures.add(1, ordering: .relaxed)
                    return
                }
                do {
                    _ = try c.call("wm.set", ["ns": "ctr", "key": "n", "value": .int(value + 1), "if_version": version])
                    done += 1
                } catch ClientError.server(let e) where e.appCode == .conflict {
                    conflicts.add(1, ordering: .relaxed)
                    #expect(e.detail("version") != nil)
                } catch {
                    failures.add(1, ordering: .relaxed)
                    return
                }
            }
        }
        #expect(failures.load(ordering: .relaxed) == 0)
        let final = try setup.call("wm.get", ["ns": "ctr", "key": "n"])
        #expect(final["value"]?.int64Value == Int64(clients * increments))
        // Every successful CAS took exactly one revision, failed ones none.
        #expect(try setup.call("admin.health")["rev"]?.int64Value == Int64(clients * increments + 1))
    }

    /// Strict mode holds replies while another fsync is in progress: a connection's
    /// pipelined replies still come back complete and in order, while other clients write.
    @Test func strictPipelinedRepliesComeBackInOrderUnderConcurrentWrites() throws {
        let daemon = try Daemon(config: "durability = \"strict\"\n")
        let raw = try RawConnection(daemon.socket)
        raw.send(#"{"jsonrpc":"2.0","id":0,"method":"session.hello","params":{"agent":"pipeliner"}}"# + "\n")
        #expect(raw.readJSON()?["result"] != nil)
        let stop = Atomic<Bool>(false)
        let writers = (0..<8).map { i in
            Thread {
                guard let c = try? daemon.client("writer-\(i)") else { return }
                var n = 0
                while !stop.load(ordering: .relaxed) && n < 5000 {
                    _ = try? c.call("wm.set", ["ns": "load", "key": .string("k\(i)"), "value": .int(Int64(n))])
                    n += 1
                }
            }
        }
        writers.forEach { $0.start() }
        let count = 300
        var lines = ""
        for i in 1...count {
            lines += #"{"jsonrpc":"2.0","id":\#(i),"method":"wm.set","params":{"ns":"pipe","key":"k","value":\#(i)}}"# + "\n"
        }
        raw.send(lines)
        var lastVersion: Int64 = 0
        for i in 1...count {
            let reply = try #require(raw.readJSON(timeoutMs: 10_000), "reply \(i) missing")
            #expect(reply["id"]?.int64Value == Int64(i))
            let version = try #require(reply["result"]?["version"]?.int64Value)
            #expect(version > lastVersion)
            lastVersion = version
        }
        stop.store(true, ordering: .relaxed)
        let check = try daemon.client("checker")
        #expect(try check.call("wm.get", ["ns": "pipe", "key": "k"])["value"]?.int64Value == Int64(count))
    }

    @Test func transactionsMoveValuesAtomically() throws {
        let daemon = try Daemon()
        let setup = try daemon.client()
        _ = try setup.call("wm.txn", ["ops": [["op": "set", "ns": "bank", "key": "a", "value": 1000],
                                              ["op": "set", "ns": "bank", "key": "b", "value": 0]]])
        DispatchQueue.concurrentPerform(iterations: 8) { i in
            guard let c = try? daemon.client("t\(i)") else { return }
            var moved = 0
            while moved < 25 {
                guard let a = try? c.call("wm.get", ["ns": "bank", "key": "a"]),
                    let b = try? c.call("wm.get", ["ns": "bank", "key": "b"]),
                    let av = a["value"]?.int64Value, let bv = b["value"]?.int64Value,
                    let aver = a["version"], let bver = b["version"]
                else { return }
                let ok = (try? c.call("wm.txn", [
                    "compare": [["ns": "bank", "key": "a", "version": aver], ["ns": "bank", "key": "b", "version": bver]],
                    "ops": [["op": "set", "ns": "bank", "key": "a", "value": .int(av - 1)],
                            ["op": "set", "ns": "bank", "key": "b", "value": .int(bv + 1)]],
                ])) != nil
                if ok { moved += 1 }
            }
        }
        let a = try setup.call("wm.get", ["ns": "bank", "key": "a"])["value"]?.int64Value
        let b = try setup.call("wm.get", ["ns": "bank", "key": "b"])["value"]?.int64Value
        #expect(a == 800)
        #expect(b == 200)
    }
}
