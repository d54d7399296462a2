/* Page checksums for SQLite database files: see include/page_checksum.h.
 *
 * Design: a VFS shim over the default VFS. Only main database files are wrapped (the WAL
 * has its own frame checksums, the shared-memory index is not durable). A file starts
 * "unprotected" and becomes "protected" when its header (page 1, offset 20) shows a
 * reserve of exactly 8 bytes per page, which is seen on every read or write of page 1.
 * While protected: a write of a whole page stores the checksum of its first n-8 bytes in
 * its last 8; a read of a whole page verifies it; memory-mapped reads are refused so
 * every page goes through the check. The checksum is a pair of 32-bit running sums over
 * the page's 32-bit little-endian words (s1 += w; s2 += s1): every single-bit error and
 * every burst within a word changes it, at a few cycles per word. */
#include <sqlite3.h>
#include <stdint.h>
#include <string.h>

#define RESERVE 8
#define VFS_NAME "mnemo-checksum"

typedef struct {
    sqlite3_file base;      /* our methods */
    const char *name;       /* for the log line of a failed check */
    int protected_;         /* the header reserves RESERVE bytes */
    /* the wrapped file follows this struct */
} ChecksumFile;

#define LOWER(f) ((sqlite3_file *)(((ChecksumFile *)(f)) + 1))
#define BELOW(vfs) ((sqlite3_vfs *)((vfs)->pAppData))

void mnemo_page_checksum(const unsigned char *page, int size, unsigned char out[8]) {
    uint32_t s1 = 0, s2 = 0;
    int n = size - RESERVE;
    for (int i = 0; i + 4 <= n; i += 4) {
        uint32_t w = (uint32_t)page[i] | (uint32_t)page[i + 1] << 8 | (uint32_t)page[i + 2] << 16 | (uint32_t)page[i + 3] << 24;
        s1 += w;
        s2 += s1;
    }
    for (int k = 0; k < 4; k++) {
        out[k] = (unsigned char)(s1 >> (8 * k));
        out[4 + k] = (unsigned char)(s2 >> (8 * k));
    }
}

static int is_page(int amount) { return amount >= 512 && amount <= 65536 && (amount & (amount - 1)) == 0; }

/* Page 1 passing by: does the header reserve RESERVE bytes? */
static void observe_header(ChecksumFile *f, const void *buf, int amount, sqlite3_int64 offset) {
    if (offset == 0 && amount >= 100 && memcmp(buf, "SQLite format 3", 16) == 0) {
        f->protected_ = ((const unsigned char *)buf)[20] == RESERVE;
    }
}

static int cs_close(sqlite3_file *file) { return LOWER(file)->pMethods->xClose(LOWER(file)); }

static int cs_read(sqlite3_file *file, void *buf, int amount, sqlite3_int64 offset) {
    ChecksumFile *f = (ChecksumFile *)file;
    int rc = LOWER(file)->pMethods->xRead(LOWER(file), buf, amount, offset);
    if (rc != SQLITE_OK) return rc;
    observe_header(f, buf, amount, offset);
    if (f->protected_ && is_page(amount)) {
        unsigned char sum[RESERVE];
        mnemo_page_checksum(buf, amount, sum);
        if (memcmp((unsigned char *)buf + amount - RESERVE, sum, RESERVE) != 0) {
            sqlite3_log(SQLITE_IOERR_DATA, "page checksum mismatch at offset %lld of %s", offset, f->name ? f->name : "?");
            return SQLITE_IOERR_DATA;
        }
    }
    return SQLITE_OK;
}

static int cs_write(sqlite3_file *file, const void *buf, int amount, sqlite3_int64 offset) {
    ChecksumFile *f = (ChecksumFile *)file;
    observe_header(f, buf, amount, offset);
    if (f->protected_ && is_page(amount)) {
        /* SQLite hands pages in its own buffers, whose reserved tail is ours to fill. */
        mnemo_page_checksum(buf, amount, (unsigned char *)buf + amount - RESERVE);
    }
    return LOWER(file)->pMethods->xWrite(LOWER(file), buf, amount, offset);
}

static int cs_truncate(sqlite3_file *file, sqlite3_int64 size) { return LOWER(file)->pMethods->xTruncate(LOWER(file), size); }
static int cs_sync(sqlite3_file *file, int flags) { return LOWER(file)->pMethods->xSync(LOWER(file), flags); }
static int cs_file_size(sqlite3_file *file, sqlite3_int64 *size) { return LOWER(file)->pMethods->xFileSize(LOWER(file), size); }
static int cs_lock(sqlite3_file *file, int level) { return LOWER(file)->pMethods->xLock(LOWER(file), level); }
static int cs_unlock(sqlite3_file *file, int level) { return LOWER(file)->pMethods->xUnlock(LOWER(file), level); }
static int cs_check_reserved(sqlite3_file *file, int *out) { return LOWER(file)->pMethods->xCheckReservedLock(LOWER(file), out); }

static int cs_file_control(sqlite3_file *file, int op, void *arg) {
    ChecksumFile *f = (ChecksumFile *)file;
    /* A protected database keeps its page size: the checksum lives at the page's end. */
    if (op == SQLITE_FCNTL_PRAGMA && f->protected_) {
        char **args = (char **)arg;
        if (args[1] && args[2] && sqlite3_stricmp(args[1], "page_size") == 0) return SQLITE_OK;
    }
    int rc = LOWER(file)->pMethods->xFileControl(LOWER(file), op, arg);
    if (rc == SQLITE_OK && op == SQLITE_FCNTL_VFSNAME) *(char **)arg = sqlite3_mprintf(VFS_NAME "/%z", *(char **)arg);
    return rc;
}

static int cs_sector_size(sqlite3_file *file) { return LOWER(file)->pMethods->xSectorSize(LOWER(file)); }
static int cs_device_characteristics(sqlite3_file *file) {
    int caps = LOWER(file)->pMethods->xDeviceCharacteristics(LOWER(file));
#ifdef SQLITE_IOCAP_SUBPAGE_READ
    caps &= ~SQLITE_IOCAP_SUBPAGE_READ; /* whole pages only: a partial read cannot be checked */
#endif
    return caps;
}
static int cs_shm_map(sqlite3_file *file, int page, int size, int extend, void volatile **out) {
    return LOWER(file)->pMethods->xShmMap(LOWER(file), page, size, extend, out);
}
static int cs_shm_lock(sqlite3_file *file, int offset, int n, int flags) { return LOWER(file)->pMethods->xShmLock(LOWER(file), offset, n, flags); }
static void cs_shm_barrier(sqlite3_file *file) { LOWER(file)->pMethods->xShmBarrier(LOWER(file)); }
static int cs_shm_unmap(sqlite3_file *file, int del) { return LOWER(file)->pMethods->xShmUnmap(LOWER(file), del); }

static int cs_fetch(sqlite3_file *file, sqlite3_int64 offset, int amount, void **out) {
    ChecksumFile *f = (ChecksumFile *)file;
    sqlite3_file *lower = LOWER(file);
    /* A mapped page would bypass the check: protected files are read, never mapped. */
    if (f->protected_ || lower->pMethods->iVersion < 3 || !lower->pMethods->xFetch) {
        *out = 0;
        return SQLITE_OK;
    }
    return lower->pMethods->xFetch(lower, offset, amount, out);
}

static int cs_unfetch(sqlite3_file *file, sqlite3_int64 offset, void *page) {
    sqlite3_file *lower = LOWER(file);
    if (lower->pMethods->iVersion < 3 || !lower->pMethods->xUnfetch) return SQLITE_OK;
    return lower->pMethods->xUnfetch(lower, offset, page);
}

static const sqlite3_io_methods checksum_methods = {
    3, cs_close, cs_read, cs_write, cs_truncate, cs_sync, cs_file_size, cs_lock, cs_unlock, cs_check_reserved,
    cs_file_control, cs_sector_size, cs_device_characteristics, cs_shm_map, cs_shm_lock, cs_shm_barrier, cs_shm_unmap,
    cs_fetch, cs_unfetch,
};

static int vfs_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags, int *out_flags) {
    sqlite3_vfs *below = BELOW(vfs);
    if (!(flags & SQLITE_OPEN_MAIN_DB)) return below->xOpen(below, name, file, flags, out_flags);
    ChecksumFile *f = (ChecksumFile *)file;
    memset(f, 0, sizeof(*f));
    f->name = name;
    int rc = below->xOpen(below, name, LOWER(file), flags, out_flags);
    file->pMethods = rc == SQLITE_OK ? &checksum_methods : 0;
    return rc;
}

static int vfs_delete(sqlite3_vfs *v, const char *p, int sync) { return BELOW(v)->xDelete(BELOW(v), p, sync); }
static int vfs_access(sqlite3_vfs *v, const char *p, int flags, int *out) { return BELOW(v)->xAccess(BELOW(v), p, flags, out); }
static int vfs_full_pathname(sqlite3_vfs *v, const char *p, int n, char *out) { return BELOW(v)->xFullPathname(BELOW(v), p, n, out); }
static void *vfs_dl_open(sqlite3_vfs *v, const char *p) { return BELOW(v)->xDlOpen(BELOW(v), p); }
static void vfs_dl_error(sqlite3_vfs *v, int n, char *out) { BELOW(v)->xDlError(BELOW(v), n, out); }
static void (*vfs_dl_sym(sqlite3_vfs *v, void *h, const char *s))(void) { return BELOW(v)->xDlSym(BELOW(v), h, s); }
static void vfs_dl_close(sqlite3_vfs *v, void *h) { BELOW(v)->xDlClose(BELOW(v), h); }
static int vfs_randomness(sqlite3_vfs *v, int n, char *out) { return BELOW(v)->xRandomness(BELOW(v), n, out); }
static int vfs_sleep(sqlite3_vfs *v, int us) { return BELOW(v)->xSleep(BELOW(v), us); }
static int vfs_current_time(sqlite3_vfs *v, double *out) { return BELOW(v)->xCurrentTime(BELOW(v), out); }
static int vfs_last_error(sqlite3_vfs *v, int n, char *out) { return BELOW(v)->xGetLastError(BELOW(v), n, out); }
static int vfs_current_time64(sqlite3_vfs *v, sqlite3_int64 *out) { return BELOW(v)->xCurrentTimeInt64(BELOW(v), out); }
static int vfs_set_syscall(sqlite3_vfs *v, const char *n, sqlite3_syscall_ptr p) { return BELOW(v)->xSetSystemCall(BELOW(v), n, p); }
static sqlite3_syscall_ptr vfs_get_syscall(sqlite3_vfs *v, const char *n) { return BELOW(v)->xGetSystemCall(BELOW(v), n); }
static const char *vfs_next_syscall(sqlite3_vfs *v, const char *n) { return BELOW(v)->xNextSystemCall(BELOW(v), n); }

static sqlite3_vfs checksum_vfs = {
    3, 0, 1024, 0, VFS_NAME, 0,
    vfs_open, vfs_delete, vfs_access, vfs_full_pathname, vfs_dl_open, vfs_dl_error, vfs_dl_sym, vfs_dl_close,
    vfs_randomness, vfs_sleep, vfs_current_time, vfs_last_error, vfs_current_time64,
    vfs_set_syscall, vfs_get_syscall, vfs_next_syscall,
};

int mnemo_page_checksums_register(void) {
    if (sqlite3_vfs_find(VFS_NAME)) return SQLITE_OK;
    sqlite3_vfs *below = sqlite3_vfs_find(0);
    if (!below || below->iVersion < 3) return SQLITE_ERROR;
    checksum_vfs.pAppData = below;
    checksum_vfs.szOsFile = (int)sizeof(ChecksumFile) + below->szOsFile;
    checksum_vfs.mxPathname = below->mxPathname;
    return sqlite3_vfs_register(&checksum_vfs, 1);
}

int mnemo_page_checksums_request(struct sqlite3 *db) {
    int n = RESERVE;
    return sqlite3_file_control(db, "main", SQLITE_FCNTL_RESERVE_BYTES, &n);
}
