#!/usr/bin/env python3
"""Bulk-ingest probe: how fast a mnemod takes N client-vector sem.upsert calls.

Starts its own mnemod (temporary socket and data directory), sends N `sem.upsert` calls
with `vector_b64` vectors, BATCH calls per batch line (one JSON array per line), and
reports the wall time from the first byte sent to the last reply read. The lines are
built before the clock starts (the client's base64/JSON encoding is not measured). Then,
unless --no-import, it exports the records (`admin.export` to a file), starts a second,
empty mnemod and times `admin.import` of that file.

Bounded: N, BATCH and the line size are checked up front (a line must fit the daemon's
default 1 MiB `max_line_bytes`); every socket read has a timeout; the daemons are stopped
on exit.

    swift build -c release --product mnemod
    python3 benchmarks/ingest_probe.py                  # 100k x 384 dims, 400 per line
    python3 benchmarks/ingest_probe.py --n 20000 --connections 2 --durability strict

Only the standard library and numpy (for the random vectors).
"""

import argparse
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_LINE = 1 << 20


class Conn:
    def __init__(self, path, agent, timeout=120.0):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(path)
        self.buf = b""
        self.call("session.hello", {"agent": agent})

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.s.recv(1 << 20)
            if not chunk:
                raise RuntimeError("mnemod closed the connection")
            self.buf += chunk
        i = self.buf.index(b"\n")
        out, self.buf = self.buf[:i], self.buf[i + 1:]
        return out

    def call(self, method, params):
        self.s.sendall(json.dumps({"jsonrpc": "2.0", "id": 0, "method": method, "params": params}).encode() + b"\n")
        while True:
            msg = json.loads(self.line())
            if msg.get("id") == 0:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]


class Daemon:
    def __init__(self, binary, durability):
        self.dir = tempfile.mkdtemp(prefix="mnemo-ingest-")
        self.socket = os.path.join(self.dir, "mnemo.sock")
        config = os.path.join(self.dir, "mnemod.toml")
        with open(config, "w") as f:
            f.write(f'durability = "{durability}"\n')
        self.proc = subprocess.Popen(
            [binary, "--socket", self.socket, "--data-dir", os.path.join(self.dir, "data"), "--config", config,
             "--log-level", "warning"], stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while True:
            try:
                Conn(self.socket, "probe", timeout=2).s.close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("mnemod did not start")
                time.sleep(0.05)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def build_lines(n, dims, batch, ns, seed):
    rng = np.random.default_rng(seed)
    lines = []
    for start in range(0, n, batch):
        count = min(batch, n - start)
        vecs = rng.standard_normal((count, dims), dtype=np.float32).astype("<f4")
        calls = [{"jsonrpc": "2.0", "id": start + j, "method": "sem.upsert",
                  "params": {"ns": ns, "id": f"r{start + j}", "text": f"record {start + j}",
                             "vector_b64": base64.b64encode(vecs[j].tobytes()).decode()}}
                 for j in range(count)]
        line = json.dumps(calls, separators=(",", ":")).encode() + b"\n"
        if len(line) > MAX_LINE:
            raise SystemExit(f"a line of {batch} upserts is {len(line)} bytes, over the default 1 MiB max_line_bytes")
        lines.append(line)
    return lines


def ingest(daemon, lines, connections):
    """Sends the lines over `connections` connections (each pipelined: a writer thread
    sends, the caller reads); returns (seconds, replies, errors)."""
    conns = [Conn(daemon.socket, f"loader-{i}") for i in range(connections)]
    shares = [lines[i::connections] for i in range(connections)]
    counts = [[0, 0] for _ in conns]
    failures = []

    def run(i):
        c, share = conns[i], shares[i]
        sender = threading.Thread(target=lambda: [c.s.sendall(line) for line in share])
        sender.start()
        for _ in share:
            reply = json.loads(c.line())
            for r in reply:
                counts[i][0] += 1
                if "error" in r:
                    counts[i][1] += 1
                    if len(failures) < 3:
                        failures.append(r["error"])
        sender.join()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(connections)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    for c in conns:
        c.s.close()
    if failures:
        print("first errors:", failures, file=sys.stderr)
    return elapsed, sum(c[0] for c in counts), sum(c[1] for c in counts)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mnemod", default=os.path.join(REPO, ".build", "release", "mnemod"))
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dims", type=int, default=384)
    ap.add_argument("--batch", type=int, default=400)
    ap.add_argument("--connections", type=int, default=1)
    ap.add_argument("--durability", default="normal", choices=["strict", "normal", "volatile"])
    ap.add_argument("--no-import", action="store_true")
    a = ap.parse_args()
    if not (1 <= a.n <= 2_000_000 and 1 <= a.batch <= 1000 and 1 <= a.dims <= 4096 and 1 <= a.connections <= 64):
        raise SystemExit("out of bounds: n 1..2e6, batch 1..1000, dims 1..4096, connections 1..64")
    if not os.path.exists(a.mnemod):
        raise SystemExit(f"{a.mnemod} not found: swift build -c release --product mnemod")

    t0 = time.perf_counter()
    lines = build_lines(a.n, a.dims, a.batch, "bulk/probe", seed=7)
    print(f"built {len(lines)} lines of <= {a.batch} upserts ({max(map(len, lines))} bytes max) "
          f"in {time.perf_counter() - t0:.1f} s (not measured)")

    src = Daemon(a.mnemod, a.durability)
    try:
        elapsed, replies, errors = ingest(src, lines, a.connections)
        c = Conn(src.socket, "probe")
        records = c.call("admin.stats", {})["semantic"]["records"]
        print(f"ingest: {replies} upserts ({errors} errors), d={a.dims}, {a.batch} per line, {a.connections} connection(s), "
              f"durability {a.durability}: {elapsed:.2f} s = {replies / elapsed:,.0f} upserts/s; records stored {records}")
        if errors or records != a.n:
            raise SystemExit(1)
        if a.no_import:
            return
        path = os.path.join(src.dir, "export.jsonl")
        t0 = time.perf_counter()
        ex = c.call("admin.export", {"tiers": ["sem"], "path": path})
        print(f"export: {ex['counts']} in {time.perf_counter() - t0:.2f} s ({os.path.getsize(path) / 1e6:.0f} MB)")
        dst = Daemon(a.mnemod, a.durability)
        try:
            d = Conn(dst.socket, "probe")
            d.s.settimeout(600)
            t0 = time.perf_counter()
            im = d.call("admin.import", {"path": path})
            elapsed = time.perf_counter() - t0
            print(f"import: {im['imported']} imported, {im['skipped']} skipped in {elapsed:.2f} s = "
                  f"{im['imported'] / elapsed:,.0f} records/s")
        finally:
            dst.stop()
    finally:
        src.stop()


if __name__ == "__main__":
    main()
