# Sourced by the check scripts: a scratch directory ($work) removed at exit, and
# start_mnemod, which runs $mnemod on $work/m.sock until the script exits.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
mnemod=${MNEMOD_BIN:-$repo/.build/debug/mnemod}
work=$(mktemp -d /tmp/mnemo-check.XXXXXX)
mnemod_pid=
cleanup() {
    if [ -n "$mnemod_pid" ]; then kill "$mnemod_pid" 2>/dev/null || true; wait "$mnemod_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

start_mnemod() {
    "$mnemod" --socket "$work/m.sock" --data-dir "$work/data" --log-level warning &
    mnemod_pid=$!
    for _ in $(seq 1 300); do [ -S "$work/m.sock" ] && return 0; sleep 0.05; done
    echo "mnemod did not listen on $work/m.sock" >&2
    return 1
}
