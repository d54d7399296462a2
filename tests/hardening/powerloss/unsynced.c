/*
 * unsynced.c - an LD_PRELOAD shim that records, for a later simulated power loss, what
 * every data-changing call did to the files under $MNEMO_POWERLOSS_DIR, and when each of
 * those files was synced.
 *
 * Compiled by tests/hardening/powerloss (cc -shared -fPIC -O1 ... -ldl -lpthread) and
 * loaded into mnemod with LD_PRELOAD. Nothing is changed in what the calls do: each one is
 * passed on to libc unchanged. Before a call that changes a tracked file's bytes or size
 * (pwrite, write, writev, pwritev, ftruncate, fallocate, posix_fallocate, an open with
 * O_TRUNC) a PRE record holding the old bytes of the range and the old size is appended to
 * $MNEMO_POWERLOSS_LOG; fsync/fdatasync are bracketed by SYNC_START (CLOCK_MONOTONIC ns)
 * and, when the call succeeded, SYNC_END. After mnemod is killed, the harness undoes (in
 * reverse order) every PRE of a file logged after the SYNC_START of that file's last
 * completed sync: the file is left as a power loss right then could leave it if the disk
 * kept nothing it was not forced to keep.
 *
 * Tracked: regular files under the directory (its realpath), except names ending in
 * "-shm" and the one named "LOCK". Files are identified by (st_dev, st_ino); unlink and
 * rename are logged so that a reused inode number starts a new file. Directory operations
 * themselves (create, rename, unlink) are not simulated: they count as durable at once.
 *
 * The log: one write(2) per record on an O_APPEND descriptor, each record
 *   u32 magic 'PLG1' | u32 type | u32 payload length | u32 crc32 (zlib) of the payload
 * followed by the payload (little-endian u64 fields, then a path, then bytes), so a record
 * cut by SIGKILL fails its length or checksum and is ignored with everything after it.
 * Writes to tracked files and their PRE records are serialized by one mutex, so the order
 * of the log is the order of the writes, and a PRE logged before a SYNC_START belongs to a
 * write that had returned before the sync began.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define MAGIC 0x31474c50u /* "PLG1" little-endian */
enum { T_PRE = 1, T_SYNC_START = 2, T_SYNC_END = 3, T_UNLINK = 4, T_RENAME = 5, T_MMAP_WRITE = 6, T_OPEN = 7,
       T_UNTRACKED = 8 };
enum { OP_WRITE = 1, OP_TRUNCATE = 2, OP_FALLOCATE = 3, OP_OPEN_TRUNC = 4, OP_PUNCH = 5 };
enum { F_ZEROS = 1 };

#define MAX_FDS 65536

struct tracked {
    dev_t dev;
    ino_t ino;
    int rfd;       /* a descriptor to read old bytes through (the fd itself, or a companion) */
    int own_rfd;   /* whether rfd is ours to close */
    int append;    /* opened with O_APPEND */
    char path[PATH_MAX];
};

static struct tracked *table[MAX_FDS];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static char root[PATH_MAX];
static size_t root_len;
static int log_fd = -1;
static int enabled;
static uint64_t sync_ids;

static int (*real_open)(const char *, int, ...);
static int (*real_open64)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_openat64)(int, const char *, int, ...);
static int (*real_creat)(const char *, mode_t);
static int (*real_creat64)(const char *, mode_t);
static int (*real___open_2)(const char *, int);
static int (*real___open64_2)(const char *, int);
static int (*real___openat_2)(int, const char *, int);
static int (*real___openat64_2)(int, const char *, int);
static int (*real_close)(int);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static ssize_t (*real_pwritev)(int, const struct iovec *, int, off_t);
static ssize_t (*real_pwritev64)(int, const struct iovec *, int, off_t);
static ssize_t (*real_pwritev2)(int, const struct iovec *, int, off_t, int);
static ssize_t (*real_pread)(int, void *, size_t, off_t);
static int (*real_ftruncate)(int, off_t);
static int (*real_ftruncate64)(int, off_t);
static int (*real_fallocate)(int, int, off_t, off_t);
static int (*real_fallocate64)(int, int, off_t, off_t);
static int (*real_posix_fallocate)(int, off_t, off_t);
static int (*real_posix_fallocate64)(int, off_t, off_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_unlink)(const char *);
static int (*real_unlinkat)(int, const char *, int);
static int (*real_rename)(const char *, const char *);
static int (*real_renameat)(int, const char *, int, const char *);
static int (*real_renameat2)(int, const char *, int, const char *, unsigned);
static void *(*real_mmap)(void *, size_t, int, int, int, off_t);
static void *(*real_mmap64)(void *, size_t, int, int, int, off_t);

#define RESOLVE(name) real_##name = dlsym(RTLD_NEXT, #name)

static void init_real(void) {
    RESOLVE(open); RESOLVE(open64); RESOLVE(openat); RESOLVE(openat64); RESOLVE(creat); RESOLVE(creat64);
    RESOLVE(__open_2); RESOLVE(__open64_2); RESOLVE(__openat_2); RESOLVE(__openat64_2);
    RESOLVE(close); RESOLVE(write); RESOLVE(pwrite); RESOLVE(pwrite64); RESOLVE(writev); RESOLVE(pwritev);
    RESOLVE(pwritev64); RESOLVE(pwritev2); RESOLVE(pread); RESOLVE(ftruncate); RESOLVE(ftruncate64);
    RESOLVE(fallocate); RESOLVE(fallocate64); RESOLVE(posix_fallocate); RESOLVE(posix_fallocate64);
    RESOLVE(fsync); RESOLVE(fdatasync); RESOLVE(unlink); RESOLVE(unlinkat); RESOLVE(rename); RESOLVE(renameat);
    RESOLVE(renameat2); RESOLVE(mmap); RESOLVE(mmap64);

    const char *dir = getenv("MNEMO_POWERLOSS_DIR");
    const char *logp = getenv("MNEMO_POWERLOSS_LOG");
    if (!dir || !*dir || !logp || !*logp) return;
    if (!realpath(dir, root)) {
        /* The directory may not exist yet (mnemod creates it): use the path as given. */
        if (strlen(dir) >= sizeof root) return;
        strcpy(root, dir);
    }
    root_len = strlen(root);
    while (root_len > 1 && root[root_len - 1] == '/') root[--root_len] = 0;
    log_fd = real_open(logp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (log_fd < 0) {
        fprintf(stderr, "unsynced: cannot open the undo log %s: %s\n", logp, strerror(errno));
        abort();
    }
    enabled = 1;
}

static inline void init(void) { pthread_once(&once, init_real); }

__attribute__((constructor)) static void unsynced_ctor(void) { init(); }

/* -- the log ---------------------------------------------------------------------------- */

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;
static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}
static uint32_t crc32_of(const unsigned char *p, size_t n) {
    pthread_once(&crc_once, crc_init);
    uint32_t c = 0xFFFFFFFFu;
    while (n--) c = crc_table[(c ^ *p++) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

struct buf { unsigned char *p; size_t n, cap; };
static void put(struct buf *b, const void *data, size_t n) {
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n) cap *= 2;
        unsigned char *q = realloc(b->p, cap);
        if (!q) { fprintf(stderr, "unsynced: out of memory\n"); abort(); }
        b->p = q; b->cap = cap;
    }
    memcpy(b->p + b->n, data, n);
    b->n += n;
}
static void put64(struct buf *b, uint64_t v) { put(b, &v, 8); } /* x86_64/aarch64: little-endian */
static void put_path(struct buf *b, const char *path) {
    uint64_t n = strlen(path);
    put64(b, n);
    put(b, path, n);
}

/* Appends one record (header + payload) with one write(2). Caller holds mu. */
static void emit(uint32_t type, struct buf *payload) {
    struct buf rec = {0};
    uint32_t h[4] = {MAGIC, type, (uint32_t)payload->n, crc32_of(payload->p, payload->n)};
    put(&rec, h, sizeof h);
    put(&rec, payload->p, payload->n);
    size_t off = 0;
    while (off < rec.n) {
        ssize_t w = real_write(log_fd, rec.p + off, rec.n - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            fprintf(stderr, "unsynced: cannot append to the undo log: %s\n", strerror(errno));
            abort(); /* a simulation that silently missed a write would be worse than none */
        }
        off += (size_t)w;
    }
    free(rec.p);
    free(payload->p);
}

static uint64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* -- which files ------------------------------------------------------------------------ */

static int wanted_path(const char *path) {
    if (strncmp(path, root, root_len) != 0 || path[root_len] != '/') return 0;
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    if (strcmp(base, "LOCK") == 0) return 0;
    if (n >= 4 && strcmp(base + n - 4, "-shm") == 0) return 0;
    return 1;
}

static int fd_path(int fd, char *out) {
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, out, PATH_MAX - 1);
    if (n <= 0) return -1;
    out[n] = 0;
    return 0;
}

/* After a successful open: starts tracking `fd` when it is a wanted regular file. */
static void track(int fd, int flags) {
    if (!enabled || fd < 0) return;
    char path[PATH_MAX];
    if (fd_path(fd, path) != 0 || !wanted_path(path)) return;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return;
    if (fd >= MAX_FDS) {
        /* Beyond the table: the simulation would miss its writes. Say so (the harness fails). */
        struct buf p = {0};
        put64(&p, (uint64_t)st.st_dev); put64(&p, (uint64_t)st.st_ino); put_path(&p, path);
        pthread_mutex_lock(&mu);
        emit(T_UNTRACKED, &p);
        pthread_mutex_unlock(&mu);
        fprintf(stderr, "unsynced: descriptor %d of %s is beyond the shim's table: not tracked\n", fd, path);
        return;
    }
    struct tracked *t = calloc(1, sizeof *t);
    if (!t) abort();
    t->dev = st.st_dev;
    t->ino = st.st_ino;
    t->append = (flags & O_APPEND) != 0;
    strcpy(t->path, path);
    if ((flags & O_ACCMODE) == O_WRONLY) {
        char link[64];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        t->rfd = real_open(link, O_RDONLY | O_CLOEXEC);
        t->own_rfd = t->rfd >= 0;
    } else {
        t->rfd = fd;
    }
    struct buf p = {0};
    pthread_mutex_lock(&mu);
    struct tracked *old = table[fd];
    table[fd] = t;
    put64(&p, (uint64_t)st.st_dev); put64(&p, (uint64_t)st.st_ino); put64(&p, (uint64_t)flags);
    put64(&p, (uint64_t)st.st_size); put_path(&p, path);
    emit(T_OPEN, &p);
    pthread_mutex_unlock(&mu);
    if (old) { if (old->own_rfd) real_close(old->rfd); free(old); }
}

/* The entry of `fd` if it is tracked and still the same file (caller holds mu). */
static struct tracked *entry(int fd, struct stat *st) {
    if (fd < 0 || fd >= MAX_FDS) return NULL;
    struct tracked *t = table[fd];
    if (!t) return NULL;
    if (fstat(fd, st) != 0 || st->st_dev != t->dev || st->st_ino != t->ino) return NULL;
    return t;
}

/* Logs the pre-image of [off, off+len) of a tracked file and its size (caller holds mu). */
static void pre_image(struct tracked *t, const struct stat *st, uint64_t op, off_t off, off_t len) {
    off_t size = st->st_size;
    off_t have = 0;
    if (off < size) have = (off + len <= size ? len : size - off);
    if (have < 0) have = 0;
    unsigned char *old = NULL;
    uint64_t flags = 0;
    if (have > 0) {
        old = malloc((size_t)have);
        if (!old) abort();
        off_t got = 0;
        while (got < have) {
            ssize_t r = real_pread(t->rfd, old + got, (size_t)(have - got), off + got);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) {
                fprintf(stderr, "unsynced: cannot read the old bytes of %s at %lld: %s\n", t->path,
                        (long long)(off + got), r < 0 ? strerror(errno) : "end of file");
                abort();
            }
            got += r;
        }
        flags = F_ZEROS;
        for (off_t i = 0; i < have; i++) if (old[i]) { flags = 0; break; }
    }
    struct buf p = {0};
    put64(&p, (uint64_t)t->dev); put64(&p, (uint64_t)t->ino); put64(&p, op); put64(&p, (uint64_t)off);
    put64(&p, (uint64_t)size); put64(&p, (uint64_t)have); put64(&p, flags); put_path(&p, t->path);
    if (have > 0 && !(flags & F_ZEROS)) put(&p, old, (size_t)have);
    free(old);
    emit(T_PRE, &p);
}

/* -- opening and closing ---------------------------------------------------------------- */

/* Before an open with O_TRUNC of an existing tracked file: its whole content is a pre-image. */
static void before_trunc_open(int dirfd, const char *path, int flags) {
    if (!enabled || !(flags & O_TRUNC) || (flags & O_ACCMODE) == O_RDONLY) return;
    int fd = real_openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return; /* does not exist yet */
    char full[PATH_MAX];
    struct stat st;
    if (fd_path(fd, full) == 0 && wanted_path(full) && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
        struct tracked t = {.dev = st.st_dev, .ino = st.st_ino, .rfd = fd};
        strcpy(t.path, full);
        pthread_mutex_lock(&mu);
        pre_image(&t, &st, OP_OPEN_TRUNC, 0, st.st_size);
        pthread_mutex_unlock(&mu);
    }
    real_close(fd);
}

static mode_t mode_arg(int flags, va_list ap) {
    return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? (mode_t)va_arg(ap, int) : 0;
}

int open(const char *path, int flags, ...) {
    init();
    va_list ap; va_start(ap, flags); mode_t mode = mode_arg(flags, ap); va_end(ap);
    before_trunc_open(AT_FDCWD, path, flags);
    int fd = real_open(path, flags, mode);
    if (fd >= 0) track(fd, flags);
    return fd;
}
int open64(const char *path, int flags, ...) {
    init();
    va_list ap; va_start(ap, flags); mode_t mode = mode_arg(flags, ap); va_end(ap);
    before_trunc_open(AT_FDCWD, path, flags);
    int fd = real_open64(path, flags, mode);
    if (fd >= 0) track(fd, flags);
    return fd;
}
int openat(int dirfd, const char *path, int flags, ...) {
    init();
    va_list ap; va_start(ap, flags); mode_t mode = mode_arg(flags, ap); va_end(ap);
    before_trunc_open(dirfd, path, flags);
    int fd = real_openat(dirfd, path, flags, mode);
    if (fd >= 0) track(fd, flags);
    return fd;
}
int openat64(int dirfd, const char *path, int flags, ...) {
    init();
    va_list ap; va_start(ap, flags); mode_t mode = mode_arg(flags, ap); va_end(ap);
    before_trunc_open(dirfd, path, flags);
    int fd = real_openat64(dirfd, path, flags, mode);
    if (fd >= 0) track(fd, flags);
    return fd;
}
int __open_2(const char *path, int flags) { return open(path, flags); }
int __open64_2(const char *path, int flags) { return open64(path, flags); }
int __openat_2(int dirfd, const char *path, int flags) { return openat(dirfd, path, flags); }
int __openat64_2(int dirfd, const char *path, int flags) { return openat64(dirfd, path, flags); }
int creat(const char *path, mode_t mode) { return open(path, O_CREAT | O_WRONLY | O_TRUNC, mode); }
int creat64(const char *path, mode_t mode) { return open64(path, O_CREAT | O_WRONLY | O_TRUNC, mode); }

int close(int fd) {
    init();
    struct tracked *t = NULL;
    if (fd >= 0 && fd < MAX_FDS && table[fd]) {
        pthread_mutex_lock(&mu);
        t = table[fd];
        table[fd] = NULL;
        pthread_mutex_unlock(&mu);
    }
    if (t) { if (t->own_rfd) real_close(t->rfd); free(t); }
    return real_close(fd);
}

/* -- data-changing calls ---------------------------------------------------------------- */

#define LOCKED_CHANGE(fd, op, offexpr, lenexpr, call)                                   \
    do {                                                                               \
        init();                                                                        \
        if ((fd) < 0 || (fd) >= MAX_FDS || !table[(fd)]) return call;                 \
        pthread_mutex_lock(&mu);                                                       \
        struct stat st_;                                                               \
        struct tracked *t_ = entry((fd), &st_);                                        \
        if (t_) {                                                                      \
            off_t off_ = (offexpr);                                                    \
            off_t len_ = (lenexpr);                                                    \
            if (off_ >= 0 && len_ > 0) pre_image(t_, &st_, (op), off_, len_);          \
        }                                                                              \
        __typeof__(call) r_ = call;                                                    \
        int e_ = errno;                                                                \
        pthread_mutex_unlock(&mu);                                                     \
        errno = e_;                                                                    \
        return r_;                                                                     \
    } while (0)

static off_t cur_off(struct tracked *t, const struct stat *st, int fd) {
    return t->append ? st->st_size : lseek(fd, 0, SEEK_CUR);
}
static off_t iov_len(const struct iovec *iov, int n) {
    off_t s = 0;
    for (int i = 0; i < n; i++) s += (off_t)iov[i].iov_len;
    return s;
}

ssize_t pwrite(int fd, const void *b, size_t n, off_t off) {
    LOCKED_CHANGE(fd, OP_WRITE, off, (off_t)n, real_pwrite(fd, b, n, off));
}
ssize_t pwrite64(int fd, const void *b, size_t n, off_t off) {
    LOCKED_CHANGE(fd, OP_WRITE, off, (off_t)n, real_pwrite64(fd, b, n, off));
}
ssize_t write(int fd, const void *b, size_t n) {
    LOCKED_CHANGE(fd, OP_WRITE, cur_off(t_, &st_, fd), (off_t)n, real_write(fd, b, n));
}
ssize_t writev(int fd, const struct iovec *iov, int cnt) {
    LOCKED_CHANGE(fd, OP_WRITE, cur_off(t_, &st_, fd), iov_len(iov, cnt), real_writev(fd, iov, cnt));
}
ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off) {
    LOCKED_CHANGE(fd, OP_WRITE, off, iov_len(iov, cnt), real_pwritev(fd, iov, cnt, off));
}
ssize_t pwritev64(int fd, const struct iovec *iov, int cnt, off_t off) {
    LOCKED_CHANGE(fd, OP_WRITE, off, iov_len(iov, cnt), real_pwritev64(fd, iov, cnt, off));
}
ssize_t pwritev2(int fd, const struct iovec *iov, int cnt, off_t off, int fl) {
    LOCKED_CHANGE(fd, OP_WRITE, off == -1 ? cur_off(t_, &st_, fd) : off, iov_len(iov, cnt),
                  real_pwritev2(fd, iov, cnt, off, fl));
}
/* Shrinking: the cut-off bytes are the pre-image; growing: only the size. */
int ftruncate(int fd, off_t len) {
    LOCKED_CHANGE(fd, OP_TRUNCATE, len < st_.st_size ? len : st_.st_size,
                  len < st_.st_size ? st_.st_size - len : (len > st_.st_size ? 1 : 0), real_ftruncate(fd, len));
}
int ftruncate64(int fd, off_t len) {
    LOCKED_CHANGE(fd, OP_TRUNCATE, len < st_.st_size ? len : st_.st_size,
                  len < st_.st_size ? st_.st_size - len : (len > st_.st_size ? 1 : 0), real_ftruncate64(fd, len));
}
/* fallocate: mode 0 may only grow the size (no bytes change); PUNCH_HOLE/ZERO_RANGE zero a
 * range (its old bytes are the pre-image); KEEP_SIZE alone changes nothing visible. */
static off_t falloc_len(int mode, const struct stat *st, off_t off, off_t len) {
    if (mode & (0x02 /* PUNCH_HOLE */ | 0x10 /* ZERO_RANGE */ | 0x08 /* COLLAPSE */ | 0x20 /* INSERT */))
        return (mode & (0x08 | 0x20)) ? (st->st_size > off ? st->st_size - off : 1) : len;
    if (mode & 0x01 /* KEEP_SIZE */) return 0;
    return off + len > st->st_size ? 1 : 0;  /* a size change only */
}
static off_t falloc_off(int mode, const struct stat *st, off_t off) {
    if (mode & (0x02 | 0x10 | 0x08 | 0x20)) return off;
    return st->st_size; /* nothing of the old content changes: record the size only */
}
int fallocate(int fd, int mode, off_t off, off_t len) {
    LOCKED_CHANGE(fd, mode ? OP_PUNCH : OP_FALLOCATE, falloc_off(mode, &st_, off), falloc_len(mode, &st_, off, len),
                  real_fallocate(fd, mode, off, len));
}
int fallocate64(int fd, int mode, off_t off, off_t len) {
    LOCKED_CHANGE(fd, mode ? OP_PUNCH : OP_FALLOCATE, falloc_off(mode, &st_, off), falloc_len(mode, &st_, off, len),
                  real_fallocate64(fd, mode, off, len));
}
int posix_fallocate(int fd, off_t off, off_t len) {
    LOCKED_CHANGE(fd, OP_FALLOCATE, st_.st_size, off + len > st_.st_size ? 1 : 0, real_posix_fallocate(fd, off, len));
}
int posix_fallocate64(int fd, off_t off, off_t len) {
    LOCKED_CHANGE(fd, OP_FALLOCATE, st_.st_size, off + len > st_.st_size ? 1 : 0, real_posix_fallocate64(fd, off, len));
}

/* -- syncing ---------------------------------------------------------------------------- */

static int synced_call(int fd, int (*call)(int)) {
    init();
    if (fd < 0 || fd >= MAX_FDS || !table[fd]) return call(fd);
    struct stat st;
    pthread_mutex_lock(&mu);
    struct tracked *t = entry(fd, &st);
    uint64_t id = ++sync_ids;
    dev_t dev = 0; ino_t ino = 0;
    char path[PATH_MAX];
    path[0] = 0;
    if (t) {
        dev = t->dev; ino = t->ino;
        strcpy(path, t->path);
        struct buf p = {0};
        put64(&p, (uint64_t)dev); put64(&p, (uint64_t)ino); put64(&p, id); put64(&p, mono_ns()); put_path(&p, path);
        emit(T_SYNC_START, &p);
    }
    pthread_mutex_unlock(&mu);
    int r = call(fd);
    int e = errno;
    if (t && r == 0) {
        struct buf p = {0};
        pthread_mutex_lock(&mu);
        put64(&p, (uint64_t)dev); put64(&p, (uint64_t)ino); put64(&p, id); put64(&p, mono_ns()); put_path(&p, path);
        emit(T_SYNC_END, &p);
        pthread_mutex_unlock(&mu);
    }
    errno = e;
    return r;
}
int fsync(int fd) { init(); return synced_call(fd, real_fsync); }
int fdatasync(int fd) { init(); return synced_call(fd, real_fdatasync); }

/* -- directory operations (logged, not simulated) and mappings --------------------------- */

static void log_unlink(int dirfd, const char *path, uint32_t type, const char *to) {
    if (!enabled) return;
    struct stat st;
    if (fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) return;
    int fd = real_openat(dirfd, path, O_PATH | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return;
    char full[PATH_MAX];
    int ok = fd_path(fd, full) == 0 && strncmp(full, root, root_len) == 0 && full[root_len] == '/';
    real_close(fd);
    if (!ok) return;
    struct buf p = {0};
    put64(&p, (uint64_t)st.st_dev); put64(&p, (uint64_t)st.st_ino); put_path(&p, full);
    if (to) put_path(&p, to);
    pthread_mutex_lock(&mu);
    emit(type, &p);
    pthread_mutex_unlock(&mu);
}

int unlink(const char *path) {
    init();
    log_unlink(AT_FDCWD, path, T_UNLINK, NULL);
    return real_unlink(path);
}
int unlinkat(int dirfd, const char *path, int flags) {
    init();
    if (!(flags & AT_REMOVEDIR)) log_unlink(dirfd, path, T_UNLINK, NULL);
    return real_unlinkat(dirfd, path, flags);
}
/* A rename that replaces a file ends that file (logged as its unlink). */
int rename(const char *from, const char *to) {
    init();
    log_unlink(AT_FDCWD, to, T_UNLINK, NULL);
    log_unlink(AT_FDCWD, from, T_RENAME, to);
    return real_rename(from, to);
}
int renameat(int fd1, const char *from, int fd2, const char *to) {
    init();
    log_unlink(fd2, to, T_UNLINK, NULL);
    log_unlink(fd1, from, T_RENAME, to);
    return real_renameat(fd1, from, fd2, to);
}
int renameat2(int fd1, const char *from, int fd2, const char *to, unsigned flags) {
    init();
    if (!(flags & 2 /* RENAME_EXCHANGE */)) log_unlink(fd2, to, T_UNLINK, NULL);
    log_unlink(fd1, from, T_RENAME, to);
    return real_renameat2(fd1, from, fd2, to, flags);
}

/* A shared writable mapping of a tracked file would change it behind the log's back: the
 * harness reports it (the simulation is then not faithful for that file). */
static void check_map(int prot, int flags, int fd) {
    if (!enabled || fd < 0 || fd >= MAX_FDS || !table[fd] || !(prot & PROT_WRITE) || !(flags & MAP_SHARED)) return;
    pthread_mutex_lock(&mu);
    struct stat st;
    struct tracked *t = entry(fd, &st);
    if (t) {
        struct buf p = {0};
        put64(&p, (uint64_t)t->dev); put64(&p, (uint64_t)t->ino); put_path(&p, t->path);
        emit(T_MMAP_WRITE, &p);
    }
    pthread_mutex_unlock(&mu);
}
void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    init();
    check_map(prot, flags, fd);
    return real_mmap(addr, len, prot, flags, fd, off);
}
void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    init();
    check_map(prot, flags, fd);
    return real_mmap64(addr, len, prot, flags, fd, off);
}
