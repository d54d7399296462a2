/// The cluster's tables in PostgreSQL, created and migrated by the first node that starts.
///
/// - `mnemo_meta`: the schema version (a node refuses a database newer than it knows).
/// - `mnemo_counter`: one row holding the last revision. Every write transaction locks it
///   (`SELECT ... FOR UPDATE`) before deciding and updates it before committing, so
///   revisions are handed out without gaps and in commit order, and writes are decided one
///   at a time cluster-wide, each on the state as of the previous commit.
/// - `mnemo_changes`: the change feed and the state of record: one row per write
///   transaction (its revisions `first_rev...rev`), its body the journal's change records
///   (one compact JSON object per line, the same codec the single-node journal writes).
///   Every node rebuilds its in-memory state from it and tails it.
/// - `mnemo_snapshots` (version 2): the whole state as of a revision, in the same record
///   format; a node starts from the latest one and the rows after it, so the feed before
///   it (past a retained tail) can be deleted.
/// - `mnemo_audit` (version 3): the audit log of every node (see ``ClusterAudit``).
/// - `mnemo_changes.keep` (version 4): the row holds changes of the SQLite tiers
///   (episodic, semantic); such rows are their state of record, never trimmed.
enum ClusterSchema {
    /// The newest version this build knows.
    static let version = 4

    /// Migration `i` brings the schema from version `i` to `i + 1`.
    static let migrations: [String] = [
        """
        CREATE TABLE mnemo_counter (id int PRIMARY KEY CHECK (id = 1), rev bigint NOT NULL);
        INSERT INTO mnemo_counter VALUES (1, 0);
        CREATE TABLE mnemo_changes (
            rev bigint PRIMARY KEY,
            first_rev bigint NOT NULL,
            node text NOT NULL,
            at timestamptz NOT NULL DEFAULT clock_timestamp(),
            body bytea NOT NULL
        );
        """,
        """
        CREATE TABLE mnemo_snapshots (
            rev bigint PRIMARY KEY,
            node text NOT NULL,
            at timestamptz NOT NULL DEFAULT clock_timestamp(),
            body bytea NOT NULL
        );
        """,
        """
        CREATE TABLE mnemo_audit (
            id bigserial PRIMARY KEY, at bigint NOT NULL, node text NOT NULL, principal text NOT NULL, agent text,
            uid bigint NOT NULL, pid bigint NOT NULL, method text NOT NULL, ns text COLLATE "C", target text,
            allowed boolean NOT NULL, error text, rev bigint
        );
        CREATE INDEX mnemo_audit_at ON mnemo_audit (at);
        """,
        """
        ALTER TABLE mnemo_changes ADD COLUMN keep boolean NOT NULL DEFAULT false;
        CREATE INDEX mnemo_changes_kept ON mnemo_changes (rev) WHERE keep;
        """,
    ]

    /// Creates or migrates the schema, one node at a time (an advisory lock held for the
    /// transaction).
    /// - Throws: ``PGError``; `newerSchema` when the database is ahead of this build.
    static func migrate(_ conn: PGConnection) throws(ClusterError) {
        try ClusterError.wrapping {
            do {
                try conn.exec("BEGIN; SELECT pg_advisory_xact_lock(7158041917)")
                try conn.exec("CREATE TABLE IF NOT EXISTS mnemo_meta (key text PRIMARY KEY, value text NOT NULL)")
                let rows = try conn.exec("SELECT value FROM mnemo_meta WHERE key = 'schema_version'")
                let current = rows.count > 0 ? Int(rows.text(0, 0)) ?? 0 : 0
                if current > version { throw ClusterError.newerSchema(found: current, known: version) }
                for step in current..<version { try conn.exec(migrations[step]) }
                try conn.exec("INSERT INTO mnemo_meta VALUES ('schema_version', $1) ON CONFLICT (key) DO UPDATE SET value = $1",
                              [.text(String(version))])
                try conn.exec("COMMIT")
            } catch {
                _ = try? conn.exec("ROLLBACK")
                throw error
            }
        }
    }
}

/// Why a cluster node cannot start or go on.
public enum ClusterError: Error, Sendable, CustomStringConvertible {
    case postgres(PGError)
    case newerSchema(found: Int, known: Int)
    case badRecord(rev: Int64, String)

    /// Runs `body`, which throws ``PGError``s and ``ClusterError``s, as one that throws only
    /// the latter.
    static func wrapping<T>(_ body: () throws -> T) throws(ClusterError) -> T {
        do {
            return try body()
        } catch let e as PGError {
            throw .postgres(e)
        } catch let e as ClusterError {
            throw e
        } catch {
            throw .postgres(PGError(message: "\(error)", connectionLost: false))
        }
    }

    public var description: String {
        switch self {
        case .postgres(let e): return "PostgreSQL: \(e)"
        case .newerSchema(let found, let known):
            return "the cluster database has schema version \(found); this mnemod knows up to \(known): upgrade this node"
        case .badRecord(let rev, let why): return "change feed row \(rev) cannot be read: \(why)"
        }
    }
}
