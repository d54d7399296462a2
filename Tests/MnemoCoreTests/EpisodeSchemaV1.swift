/// The version-1 episodic schema, as `episodic_v1` created it (for the migration test).
enum EpisodeSchemaV1 {
    static let sql = """
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
                """
}
