#ifndef MNEMO_SQLITE_SESSION_H
#define MNEMO_SQLITE_SESSION_H

/* SQLite's session extension (changesets), reached through a few plain functions: the
 * extension's declarations in sqlite3.h are behind SQLITE_ENABLE_SESSION, which the
 * Swift side does not see. A cluster node records what a transaction changed in its
 * SQLite tiers as a changeset and every other node applies it. */

struct sqlite3;

/* Starts recording the changes made through `db` to its main database's tables, except
 * those whose name starts with one of `excluded` (`nexcluded` NUL-terminated names):
 * tables kept by triggers, which re-derive them where the changeset is applied.
 * Returns the session, or NULL with `*rc` set. */
void *mnemo_session_start(struct sqlite3 *db, const char *const *excluded, int nexcluded, int *rc);

/* Ends a session: its changeset in `*out` (`*n` bytes; free it with mnemo_free; NULL
 * and 0 when nothing changed). Returns an SQLite result code. */
int mnemo_session_finish(void *session, int *n, void **out);

/* Frees what mnemo_session_finish returned. */
void mnemo_free(void *p);

/* Applies a changeset to `db`'s main database, inside the caller's transaction. A
 * deletion whose row is already gone (a trigger deleted it) is skipped; any other
 * conflict aborts it (SQLITE_ABORT): the database is not in the state the changeset was
 * recorded on. Returns an SQLite result code. */
int mnemo_changeset_apply(struct sqlite3 *db, int n, const void *changeset);

/* Iterates a changeset: start, then next until it returns 0 (or < 0: an error), then finish. */
void *mnemo_changeset_start(int n, const void *changeset, int *rc);
/* The next change: its table, operation (SQLITE_INSERT 18, SQLITE_DELETE 9, SQLITE_UPDATE 23)
 * and number of columns. Returns 1, 0 at the end, or -rc. */
int mnemo_changeset_next(void *it, const char **table, int *op, int *ncol);
/* Column `col` of the current change's old (`which_new` 0) or new (1) values: its type
 * (SQLITE_INTEGER 1, FLOAT 2, TEXT 3, BLOB 4, NULL 5; 0 when the changeset has no value
 * for it), and the value in `*i`, `*d` or `*bytes`/`*len`. */
int mnemo_changeset_value(void *it, int which_new, int col, long long *i, double *d, const void **bytes, int *len);
void mnemo_changeset_finish(void *it);

#endif
