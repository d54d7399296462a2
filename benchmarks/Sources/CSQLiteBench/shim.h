// SQLite from Debian (libsqlite3-dev), used directly by the benchmark's SQLite peer.
#include <sqlite3.h>
