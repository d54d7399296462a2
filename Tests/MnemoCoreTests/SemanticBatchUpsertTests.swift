import Foundation
import GRDB
@testable import MnemoCore
import MnemoProtocol
import Synchronization
import Testing

/// The hash embedder, recording the size of every call.
private final class CountingEmbedder: Embedder, Sendable {
    let inner = HashEmbedder()
    let calls = Mutex<[Int]>([])
    var model: String { inner.model }
    var dims: Int { inner.dims }
    func embed(_ texts: [String], field: String) throws(WireError) -> [Embedding] {
        calls.withLock { $0.append(texts.count) }
        return try inner.embed(texts, field: field)
    }
}

/// An embedder whose model is down.
private struct DownEmbedder: Embedder {
    let model = "mnemo-hash-v1"
    let dims = 384
    func embed(_ texts: [String], field: String) throws(WireError) -> [Embedding] {
        throw .app(.unavailable, "the model is not loaded")
    }
}

/// Counts the transactions a database commits.
private final class CommitCounter: TransactionObserver, @unchecked Sendable {  // @unchecked: touched on the writer thread, read after it
    private let lock = NSLock()
    private var n = 0
    var commits: Int { lock.withLock { n } }
    func observes(eventsOfKind eventKind: DatabaseEventKind) -> Bool { true }
    func databaseDidChange(with event: DatabaseEvent) {}
    func databaseDidCommit(_ db: Database) { lock.withLock { n += 1 } }
    func databaseDidRollback(_ db: Database) {}
}

private func fixture(_ embedder: any Embedder) throws -> SemanticFixture {
    var settings = SemanticSettings()
    settings.embedder = embedder
    return try SemanticFixture(volatile: true, settings: settings)
}

private func upsert(_ ns: String, _ id: String?, _ text: String, vector: [Float]? = nil, supersedes: String? = nil,
                    dedupe: SemanticStore.Dedupe = .none) -> SemanticStore.Upsert {
    var u = SemanticStore.Upsert(ns: ns, text: text)
    u.id = id
    u.vector = vector
    u.supersedes = supersedes
    u.dedupe = dedupe
    return u
}

@Suite("Semantic memory: batch upserts")
struct SemanticBatchUpsertTests {
    @Test("a batch embeds its texts in one embedder call and commits in one transaction, each item with its own revision")
    func oneCallOneTransaction() throws {
        let embedder = CountingEmbedder()
        let f = try fixture(embedder)
        let commits = CommitCounter()
        f.store.db.writer.add(transactionObserver: commits, extent: .observerLifetime)
        var batch = (0..<6).map { upsert("kb/text", "t\($0)", "fact number \($0) about staging") }
        batch.append(upsert("kb/vec", "v0", "client vector", vector: [1, 0, 0]))
        batch.append(upsert("kb/vec", "v1", "client vector", vector: [0, 1, 0], supersedes: "v0"))
        let before = commits.commits
        let results = f.store.upsert(batch, by: alice).map { try? $0.get() }
        #expect(embedder.calls.withLock { $0 } == [6])
        #expect(commits.commits - before == 1)
        let versions = results.compactMap { $0?.version }
        #expect(versions.count == 8)
        #expect(versions == versions.sorted() && Set(versions).count == 8)
        #expect(f.store.count == 8)
        #expect(f.store.get(ns: "kb/vec", id: "v0")?.supersededBy == "v1")
        #expect(f.store.get(ns: "kb/text", id: "t3")?.version == versions[3])
        let hits = try f.store.search(SemanticStore.Query(prefix: "kb", vector: nil, text: "staging fact number 3", k: 1))
        #expect(hits.hits.first?.record.id == "t3")
    }

    @Test("an item's error applies nothing of it and leaves the others alone")
    func perItemErrors() throws {
        let f = try fixture(HashEmbedder())
        try f.put("kb/vec", "a", [1, 0, 0])
        let batch = [
            upsert("kb/vec", "ok1", "fine", vector: [0, 1, 0]),
            upsert("kb/vec", "bad-dims", "wrong dims", vector: [1, 0]),
            upsert("kb/vec", "bad-sup", "missing target", vector: [0, 0, 1], supersedes: "nope"),
            upsert("kb/text", "bad-text", "?!"),  // nothing to embed: only this item fails
            upsert("kb/text", "ok2", "a text to embed"),
            upsert("kb/new", "n1", "new collection", vector: [1, 1]),
            upsert("kb/new", "n2", "same new collection, other dims", vector: [1, 1, 1]),
            upsert("kb/vec", "self", "supersedes itself", vector: [1, 1, 0], supersedes: "self"),
            upsert("kb/vec", "ok3", "fine again", vector: [0, 1, 1]),
        ]
        let results = f.store.upsert(batch, by: alice)
        func code(_ i: Int) -> String? {
            guard case .failure(let e) = results[i] else { return nil }
            return e.appCode?.rawValue ?? String(e.code)
        }
        #expect(code(0) == nil && code(4) == nil && code(5) == nil && code(8) == nil)
        #expect(code(1) == "DIMENSION_MISMATCH")
        #expect(code(2) == "NOT_FOUND")
        #expect(code(3) == "-32602")
        #expect(code(6) == "DIMENSION_MISMATCH")  // the collection made by n1 earlier in the batch
        #expect(code(7) == "-32602")
        for id in ["bad-dims", "bad-sup", "self"] { #expect(f.store.get(ns: "kb/vec", id: id) == nil) }
        #expect(f.store.get(ns: "kb/text", id: "bad-text") == nil)
        #expect(f.store.get(ns: "kb/new", id: "n2") == nil)
        #expect(f.store.count == 5)
        #expect(f.store.collection("kb/new")?.dims == 2)
        // The failed items left nothing in the keyword index either.
        let kw = try f.store.search(SemanticStore.Query(prefix: "kb", vector: nil, text: "wrong missing supersedes", k: 10, mode: .keyword))
        #expect(kw.hits.isEmpty)
    }

    @Test("an embedder failure fails every item that needed it and applies none of them")
    func embedderFailure() throws {
        let f = try fixture(DownEmbedder())
        let results = f.store.upsert([
            upsert("kb/text", "t1", "first text"),
            upsert("kb/vec", "v1", "has a vector", vector: [1, 0]),
            upsert("kb/text", "t2", "second text"),
        ], by: alice)
        for i in [0, 2] {
            guard case .failure(let e) = results[i] else { Issue.record("item \(i) succeeded"); continue }
            #expect(e.appCode == .unavailable)
        }
        #expect((try? results[1].get()) != nil)
        #expect(f.store.count == 1)
        #expect(f.store.collection("kb/text") == nil)
        #expect(f.store.get(ns: "kb/text", id: "t1") == nil)
    }

    @Test("dedupe none reports nothing, report lists near-duplicates, merge updates the best one")
    func dedupeModes() throws {
        let f = try fixture(HashEmbedder())
        try f.put("kb", "a", [1, 0, 0], text: "dark mode")
        let none = try f.put("kb", nil, [0.99, 0.01, 0], text: "dark mode again")
        #expect(none.similar == nil && none.merged == nil)
        let report = try f.put("kb", nil, [0.99, 0.02, 0], text: "dark mode, reported", dedupe: .report)
        #expect(report.similar?.map(\.id).contains("a") == true)
        #expect(report.merged == nil)
        #expect(f.store.count == 3)
        let merge = try f.put("kb", nil, [1, 0.001, 0], text: "dark mode, merged", dedupe: .merge)
        #expect(merge.merged == true && merge.similar?.isEmpty == false)
        #expect(f.store.count == 3)
        let far = try f.put("kb", nil, [0, 0, 1], text: "unrelated", dedupe: .report)
        #expect(far.similar?.isEmpty == true)
        // In a batch, near-duplicates are looked for among the records stored before it.
        let batch = f.store.upsert([
            upsert("kb", "b1", "dup one", vector: [0, 1, 0], dedupe: .report),
            upsert("kb", "b2", "dup two", vector: [0, 1, 0], dedupe: .report),
        ], by: alice)
        #expect(try batch[1].get().similar?.isEmpty == true)
    }
}
