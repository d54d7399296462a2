#!/usr/bin/env bash
# Builds the libFuzzer targets (with AddressSanitizer) and runs each one: first every
# saved crash in regressions/TARGET (each must now pass), then fuzzing for
# FUZZ_SECONDS (default 60) from the committed corpus. New crashes are written to
# crashes/; a crash fails the run. Longer: FUZZ_SECONDS=3600 fuzz/run.sh [TARGET...]
set -euo pipefail
cd "$(dirname "$0")"
seconds="${FUZZ_SECONDS:-60}"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(fuzz-frame fuzz-request fuzz-dispatch)

flags=(--sanitize fuzzer --sanitize address -Xswiftc -parse-as-library --disable-dead-strip)
mkdir -p .build
echo "== building the fuzz targets (log: fuzz/.build/build.log)"
if ! swift build "${flags[@]}" > .build/build.log 2>&1; then
    grep -E "error:" .build/build.log | head -20
    exit 1
fi
bin="$(swift build "${flags[@]}" --show-bin-path)"
mkdir -p crashes
# Swift's own crash backtracer fights AddressSanitizer's; libFuzzer reports the crash.
export SWIFT_BACKTRACE=enable=no
for t in "${targets[@]}"; do
    if compgen -G "regressions/$t/*" >/dev/null; then
        echo "== $t: replaying $(ls "regressions/$t" | wc -l) saved crash(es)"
        "$bin/$t" -runs=1 regressions/"$t"/*
    fi
    work="$(mktemp -d)"
    echo "== $t: fuzzing for ${seconds}s"
    # New inputs go to the scratch directory; the committed corpus is only read.
    "$bin/$t" "$work" "corpus/$t" -max_total_time="$seconds" -max_len=4096 -rss_limit_mb=4096 \
        -artifact_prefix="crashes/$t-" -print_final_stats=1 2>&1 | grep -E "^#|stat::|ERROR|SUMMARY|Done|INFO: (Running|Loaded|seed)" | tail -12
    rc=${PIPESTATUS[0]}
    rm -rf "$work"
    if [ "$rc" != 0 ]; then echo "== $t: FAILED (exit $rc); see fuzz/crashes/"; exit "$rc"; fi
done
