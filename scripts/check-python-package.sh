#!/usr/bin/env bash
# Builds the Python client's sdist and wheel (python -m build, setuptools fetched by pip
# into an isolated build environment), installs the wheel into a fresh virtual
# environment with nothing else, and runs a call through it against a mnemod on a
# temporary socket. Run by `make test`.
source "$(dirname "$0")/lib/daemon.sh"
python=${PYTHON:-python3}

cp -R "$repo/clients/python" "$work/src"   # a copy: the build writes its metadata next to the sources
"$python" -m build --outdir "$work/dist" "$work/src" > "$work/build.log" 2>&1 || { cat "$work/build.log" >&2; exit 1; }
sdist=$(ls "$work/dist"/mnemo_client-*.tar.gz)
wheel=$(ls "$work/dist"/mnemo_client-*-py3-none-any.whl)
listing=$(tar -tzf "$sdist")
grep -q "mnemo_client/py.typed" <<<"$listing" || { echo "the sdist lacks mnemo_client/py.typed" >&2; exit 1; }
"$python" -m venv "$work/venv"
"$work/venv/bin/pip" install -q --no-index "$wheel"

start_mnemod
cd "$work"   # not the source tree: the import must come from the installed wheel
MNEMO_SOCKET="$work/m.sock" "$work/venv/bin/python" - <<'PY'
import mnemo_client
from mnemo_client import Client
assert "site-packages" in mnemo_client.__file__, mnemo_client.__file__
with Client(agent="wheel") as c:
    c.set("pkg", "k", {"installed": True})
    assert c.get("pkg", "k")["value"] == {"installed": True}
print(f"python package: {mnemo_client.__name__} {mnemo_client.__version__} from its wheel works")
PY
