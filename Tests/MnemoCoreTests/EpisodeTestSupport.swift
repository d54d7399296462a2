import MnemoCore
import MnemoProtocol
import Synchronization

/// An in-memory episodic store on a manual clock, with its own revision counter.
func makeEpisodes(_ limits: Limits = Limits(), summarizer: Summarizer = Summarizer()) throws -> (EpisodeStore, ManualTime) {
    let time = ManualTime()
    let rev = Mutex<Int64>(0)
    let store = try EpisodeStore(dir: "/nonexistent", durability: .volatile, limits: limits, time: time,
                                 summarizer: summarizer, nextRevision: { () throws(WireError) -> Int64 in
                                     rev.withLock { r in
                                         r += 1
                                         return r
                                     }
                                 })
    return (store, time)
}

extension EpisodeStore {
    /// Appends a record by `alice` unless told otherwise.
    @discardableResult
    func add(_ ns: String, _ content: String, kind: String = "note", task: String? = nil, tags: [String] = [],
             key: String? = nil, by caller: Caller = alice) throws(WireError) -> AppendResult {
        try append(Append(ns: ns, kind: kind, content: content, task: task, tags: tags, idempotencyKey: key), by: caller)
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
}
