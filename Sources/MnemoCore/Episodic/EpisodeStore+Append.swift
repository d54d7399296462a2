import GRDB
import MnemoProtocol

extension EpisodeStore {
    /// What a client appends; provenance is added by the store.
    public struct Append: Sendable, Equatable {
        /// Namespace (validated by the caller).
        public var ns: String
        /// Kind label.
        public var kind: String
        /// The text.
        public var content: String
        /// Structured payload, compact JSON.
        public var data: [UInt8]?
        /// Task id.
        public var task: String?
        /// Distinct tags.
        public var tags: [String]
        /// Idempotency key (per namespace).
        public var idempotencyKey: String?
        /// Ids this record was derived from.
        public var derivedFrom: [String]?
        /// Embed the content (`embed: true`); a namespace under an embed policy is
        /// embedded without asking. Not part of the payload an idempotent retry compares.
        public var embed: Bool

        /// An append.
        public init(ns: String, kind: String, content: String, data: [UInt8]? = nil, task: String? = nil,
                    tags: [String] = [], idempotencyKey: String? = nil, derivedFrom: [String]? = nil, embed: Bool = false) {
            self.embed = embed
            self.ns = ns
            self.kind = kind
            self.content = content
            self.data = data
            self.task = task
            self.tags = tags
            self.idempotencyKey = idempotencyKey
            self.derivedFrom = derivedFrom
        }
    }

    /// The outcome of an append.
    public struct AppendResult: Sendable, Equatable {
        /// The record's id.
        public var id: String
        /// Its revision.
        public var rev: Int64
        /// Its server time.
        public var at: Int64
        /// True when an earlier append with the same idempotency key was replayed.
        public var replayed: Bool
        /// Whether the record has an embedding (for a replay: whether the first append made one).
        public var embedded = false
        /// Whether the embedder cut the content to fit its model.
        public var truncated = false
    }

    /// Appends a record stamped with `caller`'s provenance, in the next group commit.
    /// With an idempotency key already used in the namespace: the same payload (kind,
    /// content, data as JSON, task, the set of tags, derived_from) returns the first
    /// append's `{id, rev, at}`; another payload is `IDEMPOTENCY_MISMATCH`. A key whose
    /// record was pruned is free again.
    ///
    /// With `embed`, or under a namespace an embed policy covers, the content is embedded
    /// on the calling thread before the write and the vector stored with the record in the
    /// same commit. A retry whose key exists is not embedded again (it answers what the
    /// first append did). Content with nothing to embed (no letters or digits) is refused
    /// when the client asked, and stored without a vector under a policy.
    /// - Throws: -32602 / `LIMIT_EXCEEDED` for bad input (nothing written), `UNAVAILABLE`
    ///   when the embedder or the commit fails (nothing written).
    /// - Complexity: O(log n) B-tree and FTS inserts, one embedding when asked; one fsync
    ///   per group of appends.
    public func append(_ a: Append, by caller: Caller) throws(WireError) -> AppendResult {
        try validate(a)
        var made: ContentEmbedding?
        if a.embed || settings.embeds(a.ns), try !idempotencyKeyExists(a) {
            do throws(WireError) {
                made = try embed(a.content, field: "content")
            } catch {
                // Nothing to embed, and the client did not ask: stored without a vector.
                guard !a.embed && error.code == -32602 else { throw error }
            }
        }
        let embedding = made
        let time = self.time
        let tags = EpisodeRecord.encodeList(a.tags)
        let derived = a.derivedFrom.map(EpisodeRecord.encodeList)
        let data = a.data.map { String(decoding: $0, as: UTF8.self) }
        let result = try store.write { ctx throws -> AppendResult in
            if let key = a.idempotencyKey,
                let row = try Row.fetchOne(ctx.db.cachedStatement(sql: """
                    SELECT id, rev, at, kind, content, data, task, tags, derived_from FROM episodes
                    WHERE ns = ? AND idem_key = ?
                    """), arguments: [a.ns, key])
            {
                let same = row["kind"] == a.kind && row["content"] == a.content
                    && Self.sameData(row["data"], data) && (row["task"] as String?) == a.task
                    && Set(EpisodeRecord.decodeList(row["tags"])) == Set(a.tags)
                    && (row["derived_from"] as String?) == derived
                guard same else {
                    throw WireError.app(.idempotencyMismatch,
                                        "idempotency_key \"\(key)\" was used in \(a.ns) with another payload",
                                        [JSONMember("id", .string(row["id"]))])
                }
                let rev: Int64 = row["rev"]
                let truncated = try Bool.fetchOne(ctx.db.cachedStatement(sql: "SELECT truncated FROM episode_vectors WHERE rev = ?"),
                                                  arguments: [rev])
                return AppendResult(id: row["id"], rev: rev, at: row["at"], replayed: true, embedded: truncated != nil,
                                    truncated: truncated ?? false)
            }
            if let q = self.quotas.quota(caller.principal), q.episodicRecords != nil || q.episodicBytes != nil {
                let used = try PrincipalUsage.of(ctx.db, caller.principal)
                if let max = q.episodicRecords, used.records + 1 > max {
                    throw Quota.exceeded("episodic_records", max: max, principal: caller.principal, "it wrote \(used.records) records")
                }
                let bytes = a.content.utf8.count + (data?.utf8.count ?? 0)
                if let max = q.episodicBytes, used.bytes + bytes > max {
                    throw Quota.exceeded("episodic_bytes", max: max, principal: caller.principal,
                                         "its records hold \(used.bytes) bytes, this one \(bytes)")
                }
            }
            let rev = try ctx.nextRevision()
            let at = time.nowMs()
            let id = "ep_\(rev)"
            try ctx.db.cachedStatement(sql: """
                INSERT INTO episodes (rev, id, ns, kind, content, data, task, tags, at, agent, principal, uid, pid,
                                      derived_from, idem_key, nskey)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """).execute(arguments: [rev, id, a.ns, a.kind, a.content, data, a.task, tags, at, caller.agent,
                                         caller.principal, Int64(caller.uid), Int64(caller.pid), derived,
                                         a.idempotencyKey, FTSQuery.subtreeKeys(a.ns)])
            if let embedding { try self.storeVector(embedding, rev: rev, id: id, ns: a.ns, in: ctx) }
            return AppendResult(id: id, rev: rev, at: at, replayed: false, embedded: embedding != nil,
                                truncated: embedding?.truncated ?? false)
        }
        if !result.replayed {
            counters.withLock { $0.records += 1 }
            emit([WatchEvent(rev: result.rev, tier: "ep", kind: "append", ns: a.ns, id: result.id)])
        }
        return result
    }

    /// Whether `a`'s idempotency key was used in its namespace already (its retry is
    /// answered from the first append, so it is not embedded again).
    func idempotencyKeyExists(_ a: Append) throws(WireError) -> Bool {
        guard let key = a.idempotencyKey else { return false }
        return try store.read { db in
            try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM episodes WHERE ns = ? AND idem_key = ?"), arguments: [a.ns, key]) ?? false
        }
    }

    /// Whether two stored `data` payloads are the same JSON (member order and number
    /// spelling do not matter, as for `result.put`).
    static func sameData(_ a: String?, _ b: String?) -> Bool {
        switch (a, b) {
        case (nil, nil): return true
        case (let x?, let y?):
            if x == y { return true }
            guard let jx = try? JSONParser.parse(x), let jy = try? JSONParser.parse(y) else { return false }
            return jx.semanticallyEquals(jy)
        default: return false
        }
    }

    /// Checks an append against the contract and the limits, before anything is queued.
    func validate(_ a: Append) throws(WireError) {
        try Validate.namespace(a.ns)
        try Validate.agent(a.kind, field: "kind")
        guard !a.content.isEmpty else { throw .invalidParams("content", "must not be empty") }
        guard a.content.utf8.count <= limits.maxEpisodeContentBytes else {
            throw .app(.limitExceeded, "content is \(a.content.utf8.count) bytes; max_episode_content_bytes is \(limits.maxEpisodeContentBytes)",
                       [JSONMember("limit", "max_episode_content_bytes"), JSONMember("max", .int(limits.maxEpisodeContentBytes)),
                        JSONMember("field", "content")])
        }
        if let data = a.data, data.count > limits.maxValueBytes {
            throw .app(.limitExceeded, "data is \(data.count) bytes; max_value_bytes is \(limits.maxValueBytes)",
                       [JSONMember("limit", "max_value_bytes"), JSONMember("max", .int(limits.maxValueBytes)),
                        JSONMember("field", "data")])
        }
        if let task = a.task { try Validate.identifier(task, field: "task") }
        guard a.tags.count <= Limits.maxEpisodeTags else { throw .invalidParams("tags", "at most \(Limits.maxEpisodeTags) tags") }
        for tag in a.tags where tag.isEmpty || tag.count > Limits.maxTagCharacters {
            throw .invalidParams("tags", "each tag must be 1 to \(Limits.maxTagCharacters) characters")
        }
        guard Set(a.tags).count == a.tags.count else { throw .invalidParams("tags", "must not repeat a tag") }
        if let key = a.idempotencyKey { try Validate.identifier(key, field: "idempotency_key") }
        if let ids = a.derivedFrom {
            guard ids.count <= Limits.maxDerivedFrom else {
                throw .invalidParams("derived_from", "at most \(Limits.maxDerivedFrom) ids")
            }
            for id in ids { try Validate.identifier(id, field: "derived_from") }
        }
    }

    /// Pins or unpins records by id (pinned records are never pruned); unknown ids are
    /// ignored. Returns how many records changed and, if any did, the revision taken.
    /// - Complexity: O(k log n) for k ids.
    public func pin(ids: [String], pinned: Bool) throws(WireError) -> (updated: Int, rev: Int64?) {
        guard !ids.isEmpty else { throw .invalidParams("ids", "at least one id") }
        guard ids.count <= Limits.maxEpisodeIds else { throw .invalidParams("ids", "at most \(Limits.maxEpisodeIds) ids") }
        guard Set(ids).count == ids.count else { throw .invalidParams("ids", "must not repeat an id") }
        for id in ids { try Validate.identifier(id, field: "ids") }
        let changed = try store.write { ctx throws -> (rows: [(id: String, ns: String)], rev: Int64?) in
            let marks = Array(repeating: "?", count: ids.count).joined(separator: ",")
            var args = StatementArguments([pinned])
            args += StatementArguments(ids)
            args += StatementArguments([pinned])
            let rows = try Row.fetchAll(ctx.db, sql: "UPDATE episodes SET pinned = ? WHERE id IN (\(marks)) AND pinned != ? RETURNING id, ns",
                                        arguments: args).map { (id: $0[0] as String, ns: $0[1] as String) }
            guard !rows.isEmpty else { return ([], nil) }
            return (rows, try ctx.nextRevision())
        }
        if let rev = changed.rev {
            emit(changed.rows.map { WatchEvent(rev: rev, tier: "ep", kind: pinned ? "pin" : "unpin", ns: $0.ns, id: $0.id) })
        }
        return (changed.rows.count, changed.rev)
    }
}
