import Foundation
import GRDB
import Logging
import MnemoProtocol
import Synchronization

/// Episodic memory: an append-only log of what agents did and saw, in SQLite (WAL, one
/// group-committing writer, concurrent readers), searchable with FTS5, condensed by the
/// summarizer and trimmed by retention policies.
///
/// Every method blocks on SQLite: call it from a worker thread, never an event loop.
public final class EpisodeStore: Sendable {
    /// The database.
    public let store: SQLiteStore
    /// Limits in force.
    public let limits: Limits
    /// Per-principal quotas (`episodic_records`, `episodic_bytes`).
    let quotas: QuotaBook
    /// The clock.
    public let time: any TimeSource
    /// How summaries are written.
    public let summarizer: Summarizer
    let logger: Logger
    /// Summarize and prune runs take this lock, so a periodic job and an on-demand call
    /// never work on the same records at once.
    let jobLock = NSLock()
    /// Counters kept in memory (admin.stats must not touch SQLite on an event loop).
    let counters: Mutex<EpisodicStats>
    /// Who is told about committed changes (the watch hub).
    let observers = WatchObservers()
    /// Embeds records' content (the semantic tier's embedder); nil: nothing can be embedded.
    public let embedder: (any Embedder)?
    /// Which namespaces are embedded without asking, and the default search mode.
    public let settings: EpisodicSettings
    /// The embeddings, in memory for exact search (mirror of `episode_vectors`).
    let vectors = EpisodeVectors()

    /// Opens (creating and migrating) `dir/episodic.sqlite` and loads the stored
    /// embeddings into memory.
    /// - Throws: when the database cannot be opened or migrated, or holds a bad vector.
    public init(dir: String, durability: Durability, limits: Limits, time: any TimeSource, summarizer: Summarizer = Summarizer(),
                embedder: (any Embedder)? = nil, settings: EpisodicSettings = EpisodicSettings(), quotas: QuotaBook = QuotaBook(),
                logger: Logger = Logger(label: "mnemo.episodic"), nextRevision: @escaping @Sendable () throws(WireError) -> Int64) throws(StorageError) {
        self.quotas = quotas
        store = try SQLiteStore(dir: dir, name: "episodic", durability: durability, migrator: EpisodeStore.migrator,
                                logger: logger, nextRevision: nextRevision)
        self.limits = limits
        self.time = time
        self.summarizer = summarizer
        self.embedder = embedder
        self.settings = settings
        self.logger = logger
        // A damaged database starts with nothing counted or loaded; its calls are refused
        // (CORRUPT) while the other tiers serve.
        var counts = (0, 0)
        if store.damage == nil {
            do {
                counts = try store.read { db in
                    (try Int.fetchOne(db, sql: "SELECT count(*) FROM episodes") ?? 0,
                     try Int.fetchOne(db, sql: "SELECT count(*) FROM episode_deletions") ?? 0)
                }
            } catch {
                throw StorageError("cannot count episodic records: \(error)")
            }
        }
        counters = Mutex(EpisodicStats(records: counts.0, deletionsLogged: counts.1))
        if store.damage == nil { try loadVectors() }
    }

    /// The highest revision stored (the engine resumes the global counter above it).
    public var maxRevAtOpen: Int64 { store.maxRevAtOpen }

    /// Counters for admin.stats.
    public var stats: EpisodicStats {
        var s = counters.withLock { $0 }
        s.vectors = vectors.count
        return s
    }

    /// Registers `observer` for the watch events of committed changes (tier `ep`: kinds
    /// `append`, `summarize`, `pin`, `unpin` with the record's id; `prune` per namespace).
    /// Events are delivered after the commit, on the committing caller's thread.
    public func observe(_ observer: @escaping @Sendable ([WatchEvent]) -> Void) {
        observers.observe(observer)
    }

    func emit(_ events: [WatchEvent]) { observers.emit(events) }

    /// Commits what is queued and stops the writer.
    public func close() { store.close() }

    /// The schema, versioned: a new version is a new migration, never an edit of an old one.
    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("episodic_v1") { db in
            // rev is the global revision of the append: the order of the log and the
            // key of the cursors. id is derived from it ("ep_<rev>").
            try db.execute(sql: """
                CREATE TABLE episodes (
                  rev INTEGER PRIMARY KEY,
                  id TEXT NOT NULL UNIQUE,
                  ns TEXT NOT NULL,
                  kind TEXT NOT NULL,
                  content TEXT NOT NULL,
                  data TEXT,
                  task TEXT,
                  tags TEXT NOT NULL,
                  at INTEGER NOT NULL,
                  agent TEXT NOT NULL,
                  principal TEXT NOT NULL,
                  uid INTEGER NOT NULL,
                  pid INTEGER NOT NULL,
                  derived_from TEXT,
                  summarized INTEGER NOT NULL DEFAULT 0,
                  pinned INTEGER NOT NULL DEFAULT 0,
                  idem_key TEXT,
                  nskey TEXT GENERATED ALWAYS AS (hex(ns)) VIRTUAL
                ) STRICT;
                CREATE INDEX episodes_ns_rev ON episodes(ns, rev);
                CREATE UNIQUE INDEX episodes_idem ON episodes(ns, idem_key) WHERE idem_key IS NOT NULL;
                CREATE INDEX episodes_unsummarized ON episodes(ns, rev) WHERE summarized = 0 AND kind != 'summary';
                -- nskey (the namespace in hex) is one token per namespace: a search ANDs it
                -- with the words, so it reads only its namespace's postings.
                CREATE VIRTUAL TABLE episodes_fts USING fts5(content, nskey, content='episodes', content_rowid='rev',
                                                             tokenize='unicode61');
                CREATE TRIGGER episodes_fts_insert AFTER INSERT ON episodes BEGIN
                  INSERT INTO episodes_fts(rowid, content, nskey) VALUES (new.rev, new.content, new.nskey);
                END;
                CREATE TRIGGER episodes_fts_delete AFTER DELETE ON episodes BEGIN
                  INSERT INTO episodes_fts(episodes_fts, rowid, content, nskey) VALUES ('delete', old.rev, old.content, old.nskey);
                END;
                CREATE TABLE episode_deletions (
                  seq INTEGER PRIMARY KEY,
                  id TEXT NOT NULL,
                  ns TEXT NOT NULL,
                  kind TEXT NOT NULL,
                  rev INTEGER NOT NULL,
                  at INTEGER NOT NULL,
                  deleted_at INTEGER NOT NULL,
                  deleted_rev INTEGER NOT NULL,
                  reason TEXT NOT NULL,
                  requested_by TEXT NOT NULL
                ) STRICT;
                CREATE INDEX episode_deletions_ns ON episode_deletions(ns, seq);
                """)
        }
        m.registerMigration("episodic_v2_prefix_keys_vectors") { db in
            // nskey becomes a stored column holding the token of the namespace and of each
            // ancestor (FTSQuery.subtreeKeys, written by the store on insert), so that a
            // search under a prefix selects its subtree inside the index. The index is
            // rebuilt for the rows already there.
            try db.execute(sql: """
                DROP TRIGGER episodes_fts_insert;
                DROP TRIGGER episodes_fts_delete;
                DROP TABLE episodes_fts;
                ALTER TABLE episodes DROP COLUMN nskey;
                ALTER TABLE episodes ADD COLUMN nskey TEXT NOT NULL DEFAULT '';
                """)
            for ns in try String.fetchAll(db, sql: "SELECT DISTINCT ns FROM episodes") {
                try db.execute(sql: "UPDATE episodes SET nskey = ? WHERE ns = ?", arguments: [FTSQuery.subtreeKeys(ns), ns])
            }
            try db.execute(sql: """
                CREATE VIRTUAL TABLE episodes_fts USING fts5(content, nskey, content='episodes', content_rowid='rev',
                                                             tokenize='unicode61');
                CREATE TRIGGER episodes_fts_insert AFTER INSERT ON episodes BEGIN
                  INSERT INTO episodes_fts(rowid, content, nskey) VALUES (new.rev, new.content, new.nskey);
                END;
                CREATE TRIGGER episodes_fts_delete AFTER DELETE ON episodes BEGIN
                  INSERT INTO episodes_fts(episodes_fts, rowid, content, nskey) VALUES ('delete', old.rev, old.content, old.nskey);
                END;
                INSERT INTO episodes_fts(episodes_fts) VALUES ('rebuild');
                -- A record's embedding, keyed by its revision: the model and length it was
                -- made with, little-endian float32, and whether the content was cut to fit
                -- the model. Deleting the record deletes it (the trigger), in the same
                -- transaction.
                CREATE TABLE episode_vectors (
                  rev INTEGER PRIMARY KEY,
                  model TEXT NOT NULL,
                  dims INTEGER NOT NULL,
                  vector BLOB NOT NULL,
                  truncated INTEGER NOT NULL DEFAULT 0
                ) STRICT;
                CREATE TRIGGER episode_vectors_delete AFTER DELETE ON episodes BEGIN
                  DELETE FROM episode_vectors WHERE rev = old.rev;
                END;
                """)
        }
        m.registerMigration("episodic_v3_principal_usage") { db in
            // Records and bytes (content + data) per principal, for quotas and admin.stats.
            try PrincipalUsage.install(db, PrincipalUsage.episodes)
        }
        return m
    }
}

/// Episodic counters for admin.stats.
public struct EpisodicStats: Sendable, Equatable {
    /// Records stored.
    public var records = 0
    /// Entries in the deletion log.
    public var deletionsLogged = 0
    /// Summaries written since start-up.
    public var summariesWritten = 0
    /// Records deleted by pruning since start-up.
    public var pruned = 0
    /// Retention job runs since start-up.
    public var jobRuns = 0
    /// Duration of the last retention job run, ms.
    public var lastJobMs: Int64 = 0
    /// Times the external summarizer failed and the built-in one was used.
    public var externalSummarizerFailures = 0
    /// Records with an embedding (held in memory for vector search).
    public var vectors = 0
}
