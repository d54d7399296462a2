import GRDB
import MnemoProtocol

extension EpisodeStore {
    /// The outcome of a summarize run.
    public struct SummarizeResult: Sendable, Equatable {
        /// The summary records written.
        public var summaries: [EpisodeRecord]
        /// Sources marked summarized.
        public var summarized: Int
    }

    /// Summarizes the oldest records of `ns` that are neither summaries nor summarized
    /// yet: those older than `olderThanMs` (all when nil), at most `maxRecords`. Writes one
    /// summary per group of up to ``Limits/maxDerivedFrom`` sources (kind `summary`,
    /// `derived_from` = the sources) and marks the sources summarized, all in one commit.
    /// - Throws: -32602 for bad arguments; nothing is written on any error.
    /// - Complexity: O(k log n) for k sources, plus the summarizer.
    public func summarize(ns: String, olderThanMs: Int64?, maxRecords: Int, by caller: Caller) throws(WireError) -> SummarizeResult {
        try Validate.namespace(ns)
        guard (1...Limits.maxSummarizeRecords).contains(maxRecords) else {
            throw .invalidParams("max_records", "must be between 1 and \(Limits.maxSummarizeRecords)")
        }
        if let olderThanMs, olderThanMs < 1 { throw .invalidParams("older_than_ms", "must be at least 1") }
        jobLock.lock()
        defer { jobLock.unlock() }
        let cutoff = olderThanMs.map { time.nowMs() - $0 } ?? Int64.max
        let sources = try store.read { db in
            try EpisodeRecord.fetchAll(db, """
                SELECT \(EpisodeRecord.columns) FROM episodes
                WHERE ns = ? AND summarized = 0 AND kind != 'summary' AND at < ? ORDER BY rev LIMIT ?
                """, [ns.databaseValue, cutoff.databaseValue, maxRecords.databaseValue])
        }
        return try writeSummaries(ns: ns, sources: sources, by: caller)
    }

    /// Summarizes exactly `sources` (records of one namespace, oldest first). The caller
    /// holds ``jobLock``. Summaries are embedded (before the commit) when their namespace
    /// is embedded: an embed policy covers it, or some of the sources have a vector; an
    /// embedder failure fails the run with nothing written (`UNAVAILABLE`), so a retention
    /// job prunes nothing until the embedder is back.
    func writeSummaries(ns: String, sources: [EpisodeRecord], by caller: Caller) throws(WireError) -> SummarizeResult {
        guard !sources.isEmpty else { return SummarizeResult(summaries: [], summarized: 0) }
        var groups: [[EpisodeRecord]] = []
        var start = 0
        while start < sources.count {
            let end = min(start + Limits.maxDerivedFrom, sources.count)
            groups.append(Array(sources[start..<end]))
            start = end
        }
        // The summaries are made before the commit (an external command may take a while
        // and must not hold up the writer).
        var drafts: [SummaryDraft] = []
        var failures = 0
        for group in groups {
            let made = summarizer.summarize(ns: ns, records: group, maxBytes: limits.maxEpisodeContentBytes, logger: logger)
            drafts.append(made.draft)
            if made.externalFailed { failures += 1 }
        }
        var made: [ContentEmbedding?] = Array(repeating: nil, count: drafts.count)
        let embedded = try settings.embeds(ns) ? true : anyEmbedded(sources.map(\.rev))
        if embedded {
            for (i, d) in drafts.enumerated() {
                do throws(WireError) {
                    made[i] = try embed(d.content, field: "content")
                } catch {
                    guard error.code == -32602 else { throw error }  // nothing to embed: no vector
                }
            }
        }
        let embeddings = made
        let time = self.time
        let work = zip(zip(groups, drafts), embeddings).map { (gd, e) in (gd.0.map(\.id), gd.0.map(\.rev), gd.1, e) }
        let written = try store.write { ctx throws -> [EpisodeRecord] in
            var out: [EpisodeRecord] = []
            for (ids, revs, draft, embedding) in work {
                let list = revs.map(String.init).joined(separator: ",")
                try ctx.db.execute(sql: "UPDATE episodes SET summarized = 1 WHERE rev IN (\(list)) AND summarized = 0")
                guard ctx.db.changesCount == revs.count else {
                    throw WireError.app(.conflict, "records of \(ns) changed during summarization; nothing was written")
                }
                let rev = try ctx.nextRevision()
                let at = time.nowMs()
                let id = "ep_\(rev)"
                let derived = EpisodeRecord.encodeList(ids)
                try ctx.db.execute(sql: """
                    INSERT INTO episodes (rev, id, ns, kind, content, data, task, tags, at, agent, principal, uid, pid, derived_from, nskey)
                    VALUES (?, ?, ?, 'summary', ?, ?, NULL, '[]', ?, ?, ?, ?, ?, ?, ?)
                    """, arguments: [rev, id, ns, draft.content, draft.data.text, at, caller.agent, caller.principal,
                                     Int64(caller.uid), Int64(caller.pid), derived, FTSQuery.subtreeKeys(ns)])
                if let embedding { try self.storeVector(embedding, rev: rev, id: id, ns: ns, in: ctx) }
                out += try EpisodeRecord.fetchAll(ctx.db, "SELECT \(EpisodeRecord.columns) FROM episodes WHERE rev = ?", [rev.databaseValue])
            }
            return out
        }
        counters.withLock {
            $0.records += written.count
            $0.summariesWritten += written.count
            $0.externalSummarizerFailures += failures
        }
        emit(written.map { WatchEvent(rev: $0.rev, tier: "ep", kind: "summarize", ns: $0.ns, id: $0.id) })
        return SummarizeResult(summaries: written, summarized: sources.count)
    }
}
