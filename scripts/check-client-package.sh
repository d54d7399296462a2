#!/usr/bin/env bash
# Proves that MnemoClient can be used the way another project would use it: builds
# tests/package-consumer against a tagged clone of this repository, named by URL and
# version (SwiftPM refuses a product built with unsafe flags from such a dependency, which
# a path dependency would not show), then runs it against a mnemod on a temporary socket.
# Uses the committed state (HEAD) of the repository. Run by `make test`.
source "$(dirname "$0")/lib/daemon.sh"

git clone -q "$repo" "$work/mnemo"
git -C "$work/mnemo" tag 0.1.0
mkdir -p "$work/consumer"
cp -R "$repo/tests/package-consumer/Sources" "$work/consumer/"
sed -e "s|@MNEMO_URL@|file://$work/mnemo|" -e "s|@MNEMO_VERSION@|0.1.0|" \
    "$repo/tests/package-consumer/Package.swift.in" > "$work/consumer/Package.swift"
(cd "$work/consumer" && swift build -q)

start_mnemod
out=$(MNEMO_SOCKET="$work/m.sock" "$work/consumer/.build/debug/consumer")
case "$out" in
    "hello from a dependency version "*) echo "package consumer: MnemoClient from a versioned dependency works ($out)" ;;
    *) echo "package consumer: unexpected output: $out" >&2; exit 1 ;;
esac
