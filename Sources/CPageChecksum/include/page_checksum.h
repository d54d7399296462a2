#ifndef MNEMO_PAGE_CHECKSUM_H
#define MNEMO_PAGE_CHECKSUM_H

/* Page checksums for SQLite database files: a VFS shim, written for Mnemo.
 *
 * Every page of a database whose header reserves exactly 8 bytes per page carries a
 * checksum of the rest of the page in those 8 bytes: computed on each page write,
 * verified on each page read. A page whose checksum does not hold reads as
 * SQLITE_IOERR_DATA, so a flipped bit in a row is an error instead of a wrong value.
 * Databases with another reserve are passed through untouched. */

struct sqlite3;

/* Registers the shim as the process's default VFS, over the previous default.
 * Idempotent. Returns an SQLite result code. */
int mnemo_page_checksums_register(void);

/* Asks that `db`'s main database reserve 8 bytes per page: effective at once on a new,
 * empty database, and at the next VACUUM on an existing one. Returns an SQLite result
 * code. (Whether a file's pages carry checksums: byte 20 of its header is 8.) */
int mnemo_page_checksums_request(struct sqlite3 *db);

/* The checksum of a page of `size` bytes (a power of two from 512): over its first
 * size - 8 bytes, as stored in its last 8. Exposed for tests. */
void mnemo_page_checksum(const unsigned char *page, int size, unsigned char out[8]);

#endif
