// PostgreSQL's C client library (Debian: libpq-dev), for cluster mode.
#include <libpq-fe.h>
