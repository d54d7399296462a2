import Foundation
import Logging
import MnemoCore
import MnemoProtocol
import Synchronization

/// An in-memory episodic store on a manual clock, with its own revision counter. It embeds
/// with `embedder` (``HashEmbedder`` unless told otherwise) when asked or under `settings`.
func makeEpisodes(_ limits: Limits = Limits(), summarizer: Summarizer = Summarizer(), embedder: (any Embedder)? = HashEmbedder(),
                  settings: EpisodicSettings = EpisodicSettings()) throws -> (EpisodeStore, ManualTime) {
    let time = ManualTime()
    let rev = Mutex<Int64>(0)
    let store = try EpisodeStore(dir: "/nonexistent", durability: .volatile, limits: limits, time: time,
                                 summarizer: summarizer, embedder: embedder, settings: settings,
                                 nextRevision: { () throws(WireError) -> Int64 in
                                     rev.withLock { r in
                                         r += 1
                                         return r
                                     }
                                 })
    return (store, time)
}

/// An episodic store on disk in a fresh temporary directory, which ``reopen(embedder:)``
/// opens again (revisions continuing), as a restart does.
final class EpisodeFixture: Sendable {
    let dir: String
    let time: ManualTime
    let revisions: RevisionCounter
    let store: EpisodeStore
    /// Whether this fixture deletes the directory when released (a reopened one takes it over).
    private let ownsDirectory = Atomic<Bool>(true)

    init(embedder: (any Embedder)? = HashEmbedder(), settings: EpisodicSettings = EpisodicSettings(), dir: String? = nil,
         time: ManualTime = ManualTime(), startRev: Int64 = 0) throws {
        self.dir = dir ?? FileManager.default.temporaryDirectory.appendingPathComponent("mnemo-ep-\(UUID().uuidString)").path
        self.time = time
        let revisions = RevisionCounter(startRev)
        self.revisions = revisions
        store = try EpisodeStore(dir: self.dir, durability: .normal, limits: Limits(), time: time, embedder: embedder,
                                 settings: settings, logger: Logger(label: "test"),
                                 nextRevision: { () throws(WireError) in revisions.next() })
    }

    /// The same directory opened again after `close()`.
    func reopen(embedder: (any Embedder)? = HashEmbedder(), settings: EpisodicSettings = EpisodicSettings()) throws -> EpisodeFixture {
        store.close()
        ownsDirectory.store(false, ordering: .relaxed)
        return try EpisodeFixture(embedder: embedder, settings: settings, dir: dir, time: time, startRev: revisions.value)
    }

    deinit {
        store.close()
        if ownsDirectory.load(ordering: .relaxed) { try? FileManager.default.removeItem(atPath: dir) }
    }
}

/// A test embedder: ``HashEmbedder`` under another model name that counts its calls,
/// fails on demand (`UNAVAILABLE`, as an unreachable model server does) and truncates
/// texts longer than `maxCharacters` (embedding their beginning, flagged `truncated`).
final class TestEmbedder: Embedder {
    let model: String
    let dims: Int
    let maxCharacters: Int
    private let inner: HashEmbedder
    private let state = Mutex<(calls: Int, failing: Bool)>((0, false))

    init(model: String = "test-hash", dims: Int = 64, maxCharacters: Int = 10_000) {
        self.model = model
        self.dims = dims
        self.maxCharacters = maxCharacters
        inner = HashEmbedder(dims: dims)
    }

    /// Texts embedded so far.
    var calls: Int { state.withLock { $0.calls } }

    /// Makes every later call fail (or succeed again).
    func fail(_ failing: Bool) { state.withLock { $0.failing = failing } }

    func embed(_ texts: [String], field: String) throws(WireError) -> [Embedding] {
        let failing = state.withLock { s in
            s.calls += texts.count
            return s.failing
        }
        if failing { throw .app(.unavailable, "test embedder is down") }
        var out: [Embedding] = []
        for t in texts {
            let cut = t.count > maxCharacters
            let v = try inner.embed([cut ? String(t.prefix(maxCharacters)) : t], field: field)[0].vector
            out.append(Embedding(vector: v, truncated: cut))
        }
        return out
    }
}

extension EpisodeStore {
    /// Appends a record by `alice` unless told otherwise.
    @discardableResult
    func add(_ ns: String, _ content: String, kind: String = "note", task: String? = nil, tags: [String] = [],
             key: String? = nil, embed: Bool = false, by caller: Caller = alice) throws(WireError) -> AppendResult {
        try append(Append(ns: ns, kind: kind, content: content, task: task, tags: tags, idempotencyKey: key, embed: embed), by: caller)
    }

    /// Every record under `ns`, all pages.
    func all(_ ns: String, descending: Bool = false) throws(WireError) -> [EpisodeRecord] {
        var out: [EpisodeRecord] = []
        var cursor: EpisodeCursor? = nil
        repeat {
            let page = try query(EpisodeQuery(ns: ns, limit: 1000, descending: descending, cursor: cursor))
            out += page.records
            cursor = page.cursor
        } while cursor != nil
        return out
    }

    /// The ids of a search's hits, best first.
    func ids(_ ns: String, _ text: String, limit: Int = 10, mode: SearchMode? = nil,
             visible: (@Sendable (String) -> Bool)? = nil) throws(WireError) -> [String] {
        try search(ns: ns, text: text, limit: limit, mode: mode, visible: visible).hits.map(\.record.id)
    }
}
