import Dispatch
import MnemoCore
import MnemoProtocol
import Synchronization
import Testing

@Suite("WorkingMemory: concurrency")
struct WorkingMemoryConcurrencyTests {
    @Test("8 threads x 1000 CAS increments on one key: final value 8000, every success one revision")
    func casIncrements() throws {
        let (wm, _) = makeStore()
        let start = try wm.put("ns", "counter", 0)
        let conflicts = Atomic<Int>(0)
        let otherErrors = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 8) { thread in
            let caller = Caller(agent: "t\(thread)", principal: "local", uid: 1, gid: 1, pid: Int32(100 + thread))
            var done = 0
            while done < 1000 {
                guard let item = wm.get(ns: "ns", key: "counter"),
                    let n = (try? JSONParser.parse(item.value))?.int64Value
                else {
                    otherErrors.add(1, ordering: .relaxed)
                    return
                }
                do throws(WireError) {
                    _ = try wm.set(.init(ns: "ns", key: "counter", value: JSON.int(n + 1).bytes, ifVersion: item.version),
                               by: caller)
                    done += 1
                } catch where error.appCode == .conflict {
                    conflicts.add(1, ordering: .relaxed)
                } catch {
                    otherErrors.add(1, ordering: .relaxed)
                    return
                }
            }
        }
        #expect(otherErrors.load(ordering: .relaxed) == 0)
        #expect(try wm.value("ns", "counter") == 8000)
        #expect(wm.revision == start.rev + 8000)
        #expect(wm.get(ns: "ns", key: "counter")?.version == wm.revision)
    }

    @Test("concurrent ifAbsent creates: exactly one writer wins each key")
    func ifAbsentRace() throws {
        let (wm, _) = makeStore()
        let wins = Mutex<[String: Int]>([:])
        DispatchQueue.concurrentPerform(iterations: 8) { thread in
            for k in 0..<200 {
                let key = "k\(k)"
                if (try? wm.put("ns", key, .int(thread), ifAbsent: true)) != nil {
                    wins.withLock { $0[key, default: 0] += 1 }
                }
            }
        }
        let counts = wins.withLock { $0 }
        #expect(counts.count == 200)
        #expect(counts.values.allSatisfy { $0 == 1 })
        #expect(wm.revision == 200)
        #expect(wm.stats.keys == 200)
    }

    @Test("concurrent writers, deleters, listers and sweepers keep the counters consistent")
    func mixedLoad() throws {
        let (wm, time) = makeStore()
        DispatchQueue.concurrentPerform(iterations: 8) { thread in
            for i in 0..<500 {
                let key = "k\((thread * 31 + i) % 64)"
                switch (thread + i) % 5 {
                case 0: _ = try? wm.put("ns", key, .int(i), ttl: 5)
                case 1: _ = try? wm.put("ns", key, .int(i))
                case 2: _ = try? wm.delete(ns: "ns", key: key, by: alice)
                case 3: _ = wm.list(ns: "ns", prefix: "k", limit: 10, cursor: nil)
                default:
                    if thread == 0 { time.advance(ms: 1) }
                    _ = wm.sweepExpired(max: 8)
                }
            }
        }
        time.advance(ms: 10)
        while wm.sweepExpired(max: 1000).more {}
        let live = wm.allKeys("ns")
        #expect(wm.stats.keys == live.count)
        let (fresh, _) = makeStore()
        for key in live {
            let item = try #require(wm.get(ns: "ns", key: key))
            _ = try fresh.set(.init(ns: "ns", key: key, value: item.value), by: alice)
        }
        #expect(wm.stats.bytes == fresh.stats.bytes)
    }
}
