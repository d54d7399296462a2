/* SQLite's session extension for Mnemo's cluster mode: see include/sqlite_session.h. */
#define SQLITE_ENABLE_SESSION 1
#define SQLITE_ENABLE_PREUPDATE_HOOK 1
#include <sqlite3.h>
#include <string.h>
#include "sqlite_session.h"

struct filter {
    const char *const *excluded;
    int n;
};

static int keep_table(void *ctx, const char *table) {
    const struct filter *f = ctx;
    for (int i = 0; i < f->n; i++) {
        if (strncmp(table, f->excluded[i], strlen(f->excluded[i])) == 0) return 0;
    }
    return 1;
}

struct recording {
    sqlite3_session *session;
    struct filter filter;
    char **names;
};

void *mnemo_session_start(sqlite3 *db, const char *const *excluded, int nexcluded, int *rc) {
    struct recording *r = sqlite3_malloc(sizeof *r);
    if (!r) { *rc = SQLITE_NOMEM; return NULL; }
    memset(r, 0, sizeof *r);
    r->names = sqlite3_malloc(sizeof(char *) * (nexcluded > 0 ? nexcluded : 1));
    if (!r->names) { sqlite3_free(r); *rc = SQLITE_NOMEM; return NULL; }
    for (int i = 0; i < nexcluded; i++) r->names[i] = sqlite3_mprintf("%s", excluded[i]);
    r->filter.excluded = (const char *const *)r->names;
    r->filter.n = nexcluded;
    *rc = sqlite3session_create(db, "main", &r->session);
    if (*rc == SQLITE_OK) {
        sqlite3session_table_filter(r->session, keep_table, &r->filter);
        *rc = sqlite3session_attach(r->session, NULL);
    }
    if (*rc != SQLITE_OK) {
        void *ignored; int n;
        mnemo_session_finish(r, &n, &ignored);
        return NULL;
    }
    return r;
}

int mnemo_session_finish(void *session, int *n, void **out) {
    struct recording *r = session;
    int rc = SQLITE_OK;
    *n = 0;
    *out = NULL;
    if (r->session) {
        rc = sqlite3session_changeset(r->session, n, out);
        sqlite3session_delete(r->session);
    }
    for (int i = 0; i < r->filter.n; i++) sqlite3_free(r->names[i]);
    sqlite3_free(r->names);
    sqlite3_free(r);
    return rc;
}

void mnemo_free(void *p) { sqlite3_free(p); }

static int on_conflict(void *ctx, int kind, sqlite3_changeset_iter *it) {
    (void)ctx;
    const char *table; int ncol, op, indirect;
    if (sqlite3changeset_op(it, &table, &ncol, &op, &indirect) == SQLITE_OK
        && kind == SQLITE_CHANGESET_NOTFOUND && op == SQLITE_DELETE) {
        return SQLITE_CHANGESET_OMIT;
    }
    return SQLITE_CHANGESET_ABORT;
}

int mnemo_changeset_apply(sqlite3 *db, int n, const void *changeset) {
    return sqlite3changeset_apply(db, n, (void *)changeset, NULL, on_conflict, NULL);
}

void *mnemo_changeset_start(int n, const void *changeset, int *rc) {
    sqlite3_changeset_iter *it = NULL;
    *rc = sqlite3changeset_start(&it, n, (void *)changeset);
    return *rc == SQLITE_OK ? it : NULL;
}

int mnemo_changeset_next(void *it, const char **table, int *op, int *ncol) {
    int rc = sqlite3changeset_next(it);
    if (rc == SQLITE_DONE) return 0;
    if (rc != SQLITE_ROW) return -rc;
    int indirect;
    rc = sqlite3changeset_op(it, table, ncol, op, &indirect);
    return rc == SQLITE_OK ? 1 : -rc;
}

int mnemo_changeset_value(void *it, int which_new, int col, long long *i, double *d, const void **bytes, int *len) {
    sqlite3_value *v = NULL;
    int rc = which_new ? sqlite3changeset_new(it, col, &v) : sqlite3changeset_old(it, col, &v);
    if (rc != SQLITE_OK || v == NULL) return 0;
    int type = sqlite3_value_type(v);
    switch (type) {
    case SQLITE_INTEGER: *i = sqlite3_value_int64(v); break;
    case SQLITE_FLOAT: *d = sqlite3_value_double(v); break;
    case SQLITE_TEXT: *bytes = sqlite3_value_text(v); *len = sqlite3_value_bytes(v); break;
    case SQLITE_BLOB: *bytes = sqlite3_value_blob(v); *len = sqlite3_value_bytes(v); break;
    default: break;
    }
    return type;
}

void mnemo_changeset_finish(void *it) { sqlite3changeset_finalize(it); }
