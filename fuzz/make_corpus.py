#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target from the contract's examples
(schemas/examples/*.json): one request line per example, plus framing cases. Run it
again when examples change; the files are committed."""
import hashlib
import json
import pathlib

HERE = pathlib.Path(__file__).resolve().parent
EXAMPLES = HERE.parent / "schemas" / "examples"


def requests():
    n = 0
    for path in sorted(EXAMPLES.glob("*.json")):
        method = path.stem
        if "." not in method:
            continue
        for ex in json.loads(path.read_text()).get("examples", []):
            if "params" not in ex:
                continue
            n += 1
            yield json.dumps({"jsonrpc": "2.0", "id": n, "method": method, "params": ex["params"]},
                             separators=(",", ":")).encode()


def write(target, blobs):
    d = HERE / "corpus" / target
    d.mkdir(parents=True, exist_ok=True)
    for blob in blobs:
        (d / hashlib.sha1(blob).hexdigest()[:16]).write_bytes(blob)


lines = list(requests())
extra = [b'[{"jsonrpc":"2.0","id":1,"method":"admin.health"},{"jsonrpc":"2.0","method":"wm.del","params":{"ns":"a","key":"k"}}]',
         b'{"jsonrpc":"2.0","id":"x","method":"wm.get","params":{"ns":"a/b","key":"\\ud83d\\ude00"}}',
         b'{"jsonrpc":"2.0","id":1,"method":"wm.set","params":{"ns":"a","key":"k","value":1e308,"ttl_ms":9223372036854775807}}',
         b'[]', b'{}', b'[' * 80, b'{"a":' * 80]
write("fuzz-request", lines + extra)
# The dispatcher takes several lines per input: a session's worth of calls.
write("fuzz-dispatch", [b"\n".join(lines[i:i + 6]) for i in range(0, len(lines), 6)] + extra)
# The frame decoder's first byte picks the line cap; the rest is the byte stream.
write("fuzz-frame", [bytes([i * 37 % 256]) + b"\n".join(lines[i:i + 3]) + b"\n" for i in range(0, len(lines), 3)]
      + [b"\x05" + b"x" * 200 + b"\nshort\n", b"\x00\n\n\n", b"\x10partial"])
print(f"{len(lines)} example requests")
