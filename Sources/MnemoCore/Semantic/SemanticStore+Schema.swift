import GRDB

extension SemanticStore {
    /// The schema of `semantic.sqlite`, versioned.
    ///
    /// - `v1`: `collections` and `facts`.
    /// - `v2`: the keyword arm. `facts` is rebuilt with an explicit `seq INTEGER PRIMARY KEY`
    ///   (the old rowids, so the load order is kept; an explicit key also survives a
    ///   `VACUUM`, which the external-content index relies on) and an `nskey` column: one
    ///   token per ancestor prefix of the namespace (``FTSQuery/subtreeKeys(_:)``), so that
    ///   `nskey : "<hex of prefix>"` selects a whole subtree inside the index. `facts_fts`
    ///   is an external-content FTS5 index over `text` and `nskey`, filled from the existing
    ///   rows and then kept by the store in the same transactions as `facts` (see
    ///   ``KeywordIndexChanges``: no triggers, which would cost an FTS5 segment per row).
    /// - `v3`: `principal_usage`, records and bytes per principal (``PrincipalUsage``).
    /// - `v4`: facts that know when they were true. `facts` gains `valid_from` (NULL: the
    ///   recorded time `at`, so no row is rewritten) and `valid_to` (backfilled for
    ///   superseded rows: their superseder's recorded time). `fact_versions` keeps the
    ///   past versions of a record (same columns; `seq` is minus the version's revision, so
    ///   facts rows (positive) and version rows never share a `seq`). `facts_fts` is rebuilt
    ///   over the view `fact_texts` (both tables), so one keyword index serves current
    ///   records and past versions.
    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE collections (
                    ns TEXT PRIMARY KEY, dims INTEGER NOT NULL, metric TEXT NOT NULL, model TEXT NOT NULL) STRICT;
                CREATE TABLE facts (
                    ns TEXT NOT NULL, id TEXT NOT NULL, text TEXT NOT NULL, data TEXT, tags TEXT NOT NULL,
                    confidence REAL, superseded_by TEXT, expires_at INTEGER, version INTEGER NOT NULL,
                    agent TEXT NOT NULL, principal TEXT NOT NULL, uid INTEGER NOT NULL, pid INTEGER NOT NULL,
                    at INTEGER NOT NULL, vector BLOB NOT NULL,
                    PRIMARY KEY (ns, id)) STRICT;
                """)
        }
        m.registerMigration("v2") { db in
            // The backfill computes each row's nskey in Swift. The function stays on this
            // connection (SQLite refuses to drop it while the migrator's statements are
            // open); nothing in the schema refers to it.
            db.add(function: DatabaseFunction("mnemo_subtree_keys", argumentCount: 1, pure: true) { values in
                String.fromDatabaseValue(values[0]).map(FTSQuery.subtreeKeys)
            })
            try db.execute(sql: """
                CREATE TABLE facts_v2 (
                    seq INTEGER PRIMARY KEY,
                    ns TEXT NOT NULL, id TEXT NOT NULL, text TEXT NOT NULL, data TEXT, tags TEXT NOT NULL,
                    confidence REAL, superseded_by TEXT, expires_at INTEGER, version INTEGER NOT NULL,
                    agent TEXT NOT NULL, principal TEXT NOT NULL, uid INTEGER NOT NULL, pid INTEGER NOT NULL,
                    at INTEGER NOT NULL, vector BLOB NOT NULL, nskey TEXT NOT NULL,
                    UNIQUE (ns, id)) STRICT;
                INSERT INTO facts_v2 (seq, \(v1Columns), vector, nskey)
                    SELECT rowid, \(v1Columns), vector, mnemo_subtree_keys(ns) FROM facts ORDER BY rowid;
                DROP TABLE facts;
                ALTER TABLE facts_v2 RENAME TO facts;
                CREATE VIRTUAL TABLE facts_fts USING fts5(text, nskey, content='facts', content_rowid='seq',
                                                          tokenize='unicode61');
                INSERT INTO facts_fts(facts_fts) VALUES ('rebuild');
                """)
        }
        m.registerMigration("v3") { db in
            // Records and bytes (text + data) per principal, for quotas and admin.stats.
            try PrincipalUsage.install(db, PrincipalUsage.facts)
        }
        m.registerMigration("v4") { db in
            try db.execute(sql: """
                ALTER TABLE facts ADD COLUMN valid_from INTEGER;
                ALTER TABLE facts ADD COLUMN valid_to INTEGER;
                UPDATE facts SET valid_to = (SELECT max(facts.at, s.at) FROM facts s WHERE s.ns = facts.ns AND s.id = facts.superseded_by)
                    WHERE superseded_by IS NOT NULL;
                CREATE TABLE fact_versions (
                    seq INTEGER PRIMARY KEY,
                    ns TEXT NOT NULL, id TEXT NOT NULL, text TEXT NOT NULL, data TEXT, tags TEXT NOT NULL,
                    confidence REAL, superseded_by TEXT, expires_at INTEGER, version INTEGER NOT NULL,
                    agent TEXT NOT NULL, principal TEXT NOT NULL, uid INTEGER NOT NULL, pid INTEGER NOT NULL,
                    at INTEGER NOT NULL, vector BLOB NOT NULL, nskey TEXT NOT NULL, valid_from INTEGER, valid_to INTEGER) STRICT;
                CREATE INDEX fact_versions_by_record ON fact_versions (ns, id, version);
                CREATE VIEW fact_texts AS SELECT seq, text, nskey FROM facts UNION ALL SELECT seq, text, nskey FROM fact_versions;
                DROP TABLE facts_fts;
                CREATE VIRTUAL TABLE facts_fts USING fts5(text, nskey, content='fact_texts', content_rowid='seq',
                                                          tokenize='unicode61');
                INSERT INTO facts_fts(facts_fts) VALUES ('rebuild');
                """)
        }
        return m
    }

    /// The columns of `facts` in `v1` (the `v2` migration copies them; ``columns`` grew since).
    private static let v1Columns = "ns, id, text, data, tags, confidence, superseded_by, expires_at, version, agent, principal, uid, pid, at"
}
