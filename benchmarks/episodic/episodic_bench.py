#!/usr/bin/env python3
"""Episodic-memory helper of mnemo-bench, and the summarize + prune pass.

`ep.append`, `ep.query` and `ep.search` are measured by mnemo-bench (workload `ep`), next
to SQLite used directly on a copy of the same database:

    cd benchmarks && .build/release/mnemo-bench --workloads ep --ep-sizes 10000,100000,1000000

Subcommands:

  load             loads N records into a running mnemod through its socket, as clients
                   do (`ep.append` in batch lines of 400; N/1000 namespaces of ~1000
                   records; 8-20 Zipf-distributed words each), and writes the workload
                   mnemo-bench replays (append contents, the namespaces to query, two-word
                   searches of medium-frequency words).
  summarize-prune  starts mnemod (durability "normal"), loads it the same way and times one
                   pass: `ep.summarize` of the 100 oldest records of every namespace, then
                   `ep.prune {ns: "bench", policy: {max_count: 900}}`.

    python3 benchmarks/episodic/episodic_bench.py summarize-prune --mnemod .build/release/mnemod \\
        --records 1000000
"""
import argparse
import itertools
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time

VOCAB = 5000
PER_NAMESPACE = 1000
WORKLOAD = 2000


def words_list(rng):
    syll = ["ka", "lo", "mi", "ne", "ru", "ta", "shi", "po", "ven", "dar", "el", "qu", "zo", "bri", "gan", "tor"]
    out, seen = [], set()
    while len(out) < VOCAB:
        w = "".join(rng.choice(syll) for _ in range(rng.randint(2, 4)))
        if w not in seen:
            seen.add(w)
            out.append(w)
    return out


def zipf_weights(n):
    """Cumulative Zipf weights (pass as cum_weights: choices() then costs O(k log n))."""
    return list(itertools.accumulate(1.0 / (i + 1) for i in range(n)))


def namespaces(records):
    return max(1, records // PER_NAMESPACE)


def ns_name(i):
    return f"bench/a{i}/log"


def content(rng, vocab, weights):
    return " ".join(rng.choices(vocab, cum_weights=weights, k=rng.randint(8, 20)))


def socket_load(sock, n, rng, vocab, weights):
    """Appends `n` records through mnemod's socket, as clients do: `ep.append` calls in
    batch lines of 400 (each line one group commit). Returns the seconds it took."""
    c = Raw(sock, "bench-loader")
    t0 = time.time()
    spaces = namespaces(n)
    batch = []
    for i in range(1, n + 1):
        batch.append({"jsonrpc": "2.0", "id": i, "method": "ep.append",
                      "params": {"ns": ns_name(rng.randrange(spaces)), "kind": "observation",
                                 "content": content(rng, vocab, weights)}})
        if len(batch) == 400 or i == n:
            for reply in c.batch(batch):
                if "error" in reply:
                    raise RuntimeError(f"ep.append: {reply['error']}")
            batch = []
            if i % 50_000 == 0:
                print(f"  loaded {i} records ({time.time() - t0:.0f} s)", file=sys.stderr)
    return time.time() - t0


def load_records(sock, records):
    """Loads `records` records through the socket; the vocabulary and its weights."""
    rng = random.Random(42)
    vocab = words_list(rng)
    weights = zipf_weights(VOCAB)
    seconds = socket_load(sock, records, rng, vocab, weights)
    return seconds, vocab, weights


def load(args):
    seconds, vocab, weights = load_records(args.socket, args.records)
    rng = random.Random(7)
    spaces = namespaces(args.records)
    mid = vocab[50:1000]
    workload = {
        "records": args.records, "namespaces": spaces, "bulk_load_s": seconds,
        "appends": [[ns_name(rng.randrange(spaces)), content(rng, vocab, weights)] for _ in range(WORKLOAD)],
        "queries": [ns_name(rng.randrange(spaces)) for _ in range(WORKLOAD)],
        "searches": [[ns_name(rng.randrange(spaces)), " ".join(rng.sample(mid, 2))] for _ in range(WORKLOAD)],
    }
    with open(args.workload_out, "w") as f:
        json.dump(workload, f)


class Raw:
    """A minimal blocking JSON-RPC connection."""

    def __init__(self, path, agent):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(path)
        self.buf = b""
        self.n = 0
        self.call("session.hello", {"agent": agent})

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.s.recv(1 << 20)
            if not chunk:
                raise ConnectionError("mnemod closed the connection")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return json.loads(line)

    def batch(self, requests):
        """Sends requests as one batch line; the replies."""
        self.s.sendall(json.dumps(requests).encode() + b"\n")
        return self.line()

    def call(self, method, params=None):
        self.n += 1
        self.s.sendall(json.dumps({"jsonrpc": "2.0", "id": self.n, "method": method, "params": params or {}}).encode() + b"\n")
        msg = self.line()
        if "error" in msg:
            raise RuntimeError(f"{method}: {msg['error']}")
        return msg["result"]


def start(binary, sock, data):
    log = open(os.path.join(os.path.dirname(sock), "mnemod.log"), "ab")
    p = subprocess.Popen([binary, "--socket", sock, "--data-dir", data, "--log-level", "warning"], stdout=log, stderr=log)
    for _ in range(1200):
        try:
            Raw(sock, "bench").call("admin.health")
            return p
        except OSError:
            if p.poll() is not None:
                raise SystemExit(f"mnemod exited with {p.returncode}")
            time.sleep(0.05)
    raise SystemExit("mnemod did not start")


def stop(p):
    p.terminate()
    p.wait(60)


def summarize_prune(args):
    work = tempfile.mkdtemp(prefix="mnemo-ep-bench-")
    sock, data = os.path.join(work, "m.sock"), os.path.join(work, "data")
    results = {"records": args.records, "namespaces": namespaces(args.records)}
    try:
        p = start(args.mnemod, sock, data)
        seconds, *_ = load_records(sock, args.records)
        results["bulk_load_s"] = round(seconds, 1)
        try:
            c = Raw(sock, "maintainer")
            total = c.call("admin.stats")["episodic"]["records"]
            t0 = time.monotonic()
            summarized = summaries = 0
            for i in range(namespaces(args.records)):
                r = c.call("ep.summarize", {"ns": ns_name(i), "max_records": 100})
                summarized += r["summarized"]
                summaries += len(r["summaries"])
            t1 = time.monotonic()
            pr = c.call("ep.prune", {"ns": "bench", "policy": {"max_count": 900}})
            t2 = time.monotonic()
            results["summarize_prune_pass"] = {
                "records_before": total, "summarized": summarized, "summaries": summaries,
                "summarize_s": round(t1 - t0, 2), "deleted": pr["deleted"], "kept": pr["kept"],
                "prune_s": round(t2 - t1, 2), "total_s": round(t2 - t0, 2)}
        finally:
            stop(p)
        results["db_bytes"] = os.path.getsize(os.path.join(data, "episodic.sqlite"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(results, indent=1))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    lo = sub.add_parser("load", help="load records into a running mnemod over its socket and write the workload")
    lo.add_argument("--socket", required=True, help="a running mnemod's socket")
    lo.add_argument("--records", type=int, required=True)
    lo.add_argument("--workload-out", required=True)
    sp = sub.add_parser("summarize-prune", help="time one summarize + prune pass")
    sp.add_argument("--mnemod", default=".build/release/mnemod")
    sp.add_argument("--records", type=int, default=1_000_000)
    sp.add_argument("--out", help="write the results as JSON here")
    args = ap.parse_args()
    load(args) if args.cmd == "load" else summarize_prune(args)


if __name__ == "__main__":
    main()
