import MnemoCore
import MnemoProtocol
import Testing

@Suite("max_working_bytes covers coordination state")
struct CoordinationBudgetTests {
    func smallStore() throws -> WorkingMemory {
        var limits = Limits()
        try limits.set("max_working_bytes", to: 1 << 20)
        return makeStore(limits).0
    }

    @Test func resultsCannotGrowPastTheBudget() throws {
        let wm = try smallStore()
        let value = JSON.string(String(repeating: "r", count: 100_000))
        var stored = 0
        var refused: WireError? = nil
        for i in 0..<100 {
            do {
                _ = try wm.putResult(ns: "ns", task: "t", idempotencyKey: "k\(i)", value: value, by: alice)
                stored += 1
            } catch {
                refused = error
                break
            }
        }
        #expect(stored >= 5 && stored < 11)
        #expect(refused?.appCode == .limitExceeded)
        #expect(refused?.detail("limit") == "max_working_bytes")
        #expect(wm.stats.bytes <= 1 << 20)
    }

    @Test func inboxEntriesAndTasksCountToo() throws {
        let wm = try smallStore()
        let content = JSON.string(String(repeating: "c", count: 200_000))
        var posted = 0
        while posted < 20, (try? wm.post(ns: "ns", to: "b", type: "note", content: content, by: alice)) != nil { posted += 1 }
        #expect(posted >= 4 && posted < 6)
        // Small entries fill what is left, until less remains than a new task needs.
        var small = 0
        while small < 5000, (try? wm.post(ns: "ns", to: "b", type: "note", content: "x", by: alice)) != nil { small += 1 }
        #expect(small > 0 && small < 5000)
        // The budget is spent: a new task is refused too, with nothing applied.
        let rev = wm.revision
        let e = wireError { () throws(WireError) in try wm.transition(ns: "ns", task: "t", to: .pending, from: nil, fence: nil, by: alice) }
        #expect(e?.appCode == .limitExceeded)
        #expect(wm.revision == rev)
        #expect(wm.task(ns: "ns", task: "t") == nil)
    }
}
