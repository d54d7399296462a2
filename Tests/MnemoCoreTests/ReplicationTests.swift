import Foundation
import GRDB
import Logging
@testable import MnemoCore
import MnemoProtocol
import Synchronization
import Testing

/// How a cluster node's SQLite tiers replicate, without PostgreSQL: every write to an
/// origin store is recorded as a changeset (as in a cluster transaction) and applied to a
/// replica store (as the feed's other nodes do); the replica must then answer every read
/// as the origin does: rows, keyword index, vectors in memory, counters.
@Suite("cluster: SQLite tiers replicate by changesets")
struct ReplicationTests {
    /// Stands in for the cluster: runs the origin's writes in a recorded transaction,
    /// commits them, and applies their changes to the replica.
    final class Loopback: SQLiteWriteRouter, @unchecked Sendable {
        let origin: any ReplicatedTier
        let replica: any ReplicatedTier
        let rev = Mutex<Int64>(0)
        /// Every changeset sent, in order.
        let sent = Mutex<[Changeset]>([])

        init(_ origin: any ReplicatedTier, _ replica: any ReplicatedTier) {
            self.origin = origin
            self.replica = replica
            origin.database.router.withLock { $0 = self }
        }

        func write<T: Sendable>(_ store: SQLiteStore, _ body: @escaping @Sendable (WriteContext) throws -> T) throws(WireError) -> T {
            let outcome: Result<(T, Changeset, Int64), any Error> = store.writer.writeWithoutTransaction { db in
                Result {
                    let writers = TierWriters([(origin, db)])
                    let open = try #require(try writers.open(store))
                    let first = rev.withLock { $0 }
                    let next = Mutex(first)
                    let ctx = WriteContext(db: db) { () throws(WireError) -> Int64 in next.withLock { $0 += 1; return $0 } }
                    let value = try body(ctx)
                    open.actions += ctx.actions
                    var last = next.withLock { $0 }
                    let changes = try writers.finishRecordings().first?.1 ?? Changeset(bytes: [])
                    if !changes.isEmpty && last == first { last += 1 }
                    #expect(writers.commit(rev: last, logger: Logger(label: "test")))
                    rev.withLock { $0 = last }
                    return (value, changes, last)
                }
            }
            let (value, changes, last): (T, Changeset, Int64)
            do { (value, changes, last) = try outcome.get() } catch { throw store.wireError(error) }
            if !changes.isEmpty {
                sent.withLock { $0.append(changes) }
                replica.database.writer.writeWithoutTransaction { db in
                    TierWriters([(replica, db)]).apply(changes, to: store.name, rev: last)
                }
            }
            return value
        }
    }

    @Test("semantic: upserts, replacements, supersession and deletes read the same on the replica")
    func semantic() throws {
        let a = try SemanticFixture(), b = try SemanticFixture()
        let link = Loopback(a.store, b.store)
        let x: [Float] = [1, 0, 0, 0], y: [Float] = [0, 1, 0, 0], z: [Float] = [0, 0, 1, 0]
        let first = try a.put("wf/1", "f1", x, text: "the deploy key rotates every ninety days", tags: ["ops"])
        try a.put("wf/1", "f2", y, text: "the staging cluster runs in frankfurt")
        try a.put("wf/2", nil, z, text: "builds are signed with the release key")
        // Replaced (its row reuses the predecessor's seq: the changeset carries an update).
        try a.put("wf/1", "f1", x, text: "the deploy key rotates every thirty days")
        try a.put("wf/1", "f3", z, text: "staging moved to paris", supersedes: "f2")
        #expect(try a.store.delete(ns: "wf/2", id: try #require(b.ids("wf/2", z).first)) != nil)
        for s in [a.store, b.store] {
            let hits = try s.search(SemanticStore.Query(prefix: "wf", vector: x, text: nil, k: 10, filter: SearchFilter())).hits
            #expect(hits.map(\.record.id) == ["f1", "f3"] || hits.map(\.record.id) == ["f1", "f3", "f2"])
            #expect(s.get(ns: "wf/1", id: "f1")?.text == "the deploy key rotates every thirty days")
            #expect(s.get(ns: "wf/1", id: "f2")?.supersededBy == "f3")
            #expect(try s.history(ns: "wf/1", id: "f1")?.map(\.version) == [first.version + 3, first.version])
            let keyword = { (text: String) throws -> [String] in
                try s.search(SemanticStore.Query(prefix: "wf", vector: nil, text: text, k: 10, filter: SearchFilter(), mode: .keyword))
                    .hits.map(\.record.id)
            }
            #expect(try keyword("thirty") == ["f1"])
            #expect(try keyword("ninety") == [])  // only in a past version, not a live record
            #expect(try keyword("signed") == [])
            #expect(s.count == 3)
        }
        #expect(link.sent.withLock { $0.count } == 6)
        #expect(b.store.db.clusterRev.load(ordering: .relaxed) == a.store.db.clusterRev.load(ordering: .relaxed))
    }

    @Test("episodic: appends with vectors, pins and prunes read the same on the replica")
    func episodic() throws {
        let a = try EpisodeFixture(), b = try EpisodeFixture()
        _ = Loopback(a.store, b.store)
        let kept = try a.store.add("wf/1", "deployed build 42 to staging", embed: true)
        for i in 0..<5 { try a.store.add("wf/1", "step \(i) went fine", embed: i % 2 == 0) }
        _ = try a.store.pin(ids: [kept.id], pinned: true)
        _ = try a.store.prune(RetentionPolicy(ns: "wf/1", maxCount: 2), dryRun: false, requestedBy: "test")
        for s in [a.store, b.store] {
            let all = try s.all("wf/1")
            #expect(all.count == 3 && all.first?.id == kept.id && all.first?.pinned == true)
            #expect(try s.ids("wf/1", "staging", mode: .keyword) == [kept.id])
            #expect(try s.ids("wf/1", "deployed build 42 to staging", mode: .vector).first == kept.id)
            #expect(s.stats.records == 3 && s.stats.vectors == 2)
        }
        #expect(b.store.stats.deletionsLogged == a.store.stats.deletionsLogged)
    }

    @Test("a changeset that does not fit the replica marks it damaged, and nothing of it is applied")
    func divergence() throws {
        let a = try SemanticFixture(), b = try SemanticFixture()
        let link = Loopback(a.store, b.store)
        try a.put("wf/1", "f1", [1, 0], text: "one")
        // The replica loses the row behind the cluster's back; the origin then replaces it.
        try b.store.db.writer.write { db in try db.execute(sql: "UPDATE facts SET text = 'changed locally' WHERE id = 'f1'") }
        try a.put("wf/1", "f1", [0, 1], text: "two")
        #expect(link.sent.withLock { $0.count } == 2)
        #expect(b.store.db.damage?.contains("does not apply") == true)
        #expect(throws: WireError.self) { try b.store.history(ns: "wf/1", id: "f1") }
    }

    @Test("tables kept by triggers or by the tier are not recorded")
    func derivedTablesAreLeftOut() throws {
        let a = try EpisodeFixture(), b = try EpisodeFixture()
        let link = Loopback(a.store, b.store)
        try a.store.add("wf/1", "hello world")
        let tables = try #require(link.sent.withLock { $0.first }).rows().map(\.table)
        #expect(tables == ["episodes"])
    }
}
