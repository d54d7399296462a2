#!/usr/bin/env bash
# A throwaway PostgreSQL 15 for development and the cluster tests: Debian's postgresql-15,
# initdb in a directory of its own (as the postgres user when run as root: initdb refuses
# root), listening on a Unix socket in that directory only (no TCP), trust authentication.
#
#   scripts/pg-dev.sh start DIR     creates DIR, starts the server, prints the conninfo
#   scripts/pg-dev.sh conninfo DIR  prints the conninfo of a started DIR
#   scripts/pg-dev.sh restart DIR   pg_ctl restart -m immediate (a crash of PostgreSQL)
#   scripts/pg-dev.sh stop DIR      stops the server and removes DIR
set -euo pipefail
BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
cmd=${1:?usage: pg-dev.sh start|conninfo|restart|stop DIR}
dir=${2:?usage: pg-dev.sh start|conninfo|restart|stop DIR}

as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

conninfo() { echo "host=$dir/sock dbname=mnemo user=postgres"; }

case "$cmd" in
start)
  [ -x "$BIN/initdb" ] || { echo "pg-dev.sh: $BIN/initdb not found: apt-get install postgresql-15" >&2; exit 69; }
  mkdir -p "$dir/sock"
  [ "$(id -u)" = 0 ] && chown -R postgres:postgres "$dir"
  as_owner "$BIN/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
  as_owner "$BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
    -o "-c listen_addresses='' -c unix_socket_directories='$dir/sock' -c fsync=on -c max_connections=200" start >/dev/null \
    || { cat "$dir/server.log" >&2; exit 1; }
  as_owner "$BIN/createdb" -h "$dir/sock" -U postgres mnemo
  conninfo
  ;;
conninfo) conninfo ;;
restart)
  as_owner "$BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 -m immediate restart >/dev/null
  ;;
stop)
  if [ -d "$dir/data" ]; then as_owner "$BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true; fi
  rm -rf "$dir"
  ;;
*) echo "pg-dev.sh: unknown command $cmd" >&2; exit 64 ;;
esac
