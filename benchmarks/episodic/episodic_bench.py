#!/usr/bin/env python3
"""Episodic-memory helper of mnemo-bench, and the summarize + prune pass.

`ep.append`, `ep.query` and `ep.search` are measured by mnemo-bench (workload `ep`), next
to SQLite used directly on a copy of the same database:

    cd benchmarks && .build/release/mnemo-bench --workloads ep --ep-sizes 10000,100000,1000000

Subcommands:

  load             bulk-loads N records into the `episodic.sqlite` that a stopped mnemod
                   created (same schema, same FTS5 triggers; ids ep_<rev>; N/1000
                   namespaces of ~1000 records; 8-20 Zipf-distributed words each) and sets
                   max_rev, so loading takes seconds instead of a socket round trip per
                   record; writes the workload mnemo-bench replays (append contents, the
                   namespaces to query, two-word searches of medium-frequency words).
                   `--cache DIR` keeps the loaded file for reruns.
  summarize-prune  starts mnemod (durability "normal") on a loaded database and times one
                   pass: `ep.summarize` of the 100 oldest records of every namespace, then
                   `ep.prune {ns: "bench", policy: {max_count: 900}}`.

    python3 benchmarks/episodic/episodic_bench.py summarize-prune --mnemod .build/release/mnemod \\
        --records 1000000 --cache /tmp/mnemo-ep-bench-cache
"""
import argparse
import itertools
import json
import os
import random
import shutil
import socket
import sqlite3
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


def without_reserve(path):
    """Rebuilds mnemod's new, empty database with no reserved bytes per page (same schema
    and rows). mnemod reserves 8 bytes of every page for its page checksums, which plain
    SQLite (this loader) would leave stale, so mnemod would refuse the loaded file as
    damaged; a file without the reserve is one from before checksums, which mnemod
    rewrites once with them (a VACUUM through its checksum layer) when it opens it."""
    fresh = path + ".fresh"
    if os.path.exists(fresh):
        os.remove(fresh)
    db = sqlite3.connect(fresh)
    db.execute("ATTACH DATABASE ? AS src", (path,))
    schema = db.execute("SELECT type, name, sql FROM src.sqlite_master WHERE sql IS NOT NULL ORDER BY rowid").fetchall()
    virtual = [name for kind, name, sql in schema if sql.upper().startswith("CREATE VIRTUAL TABLE")]
    shadow = lambda name: any(name.startswith(v + "_") for v in virtual)  # noqa: E731
    for kind, name, sql in schema:
        if not name.startswith("sqlite_") and not shadow(name):
            db.execute(sql)
    for kind, name, sql in schema:
        if kind == "table" and name not in virtual and not shadow(name) and not name.startswith("sqlite_"):
            db.execute(f'INSERT INTO main."{name}" SELECT * FROM src."{name}"')
    db.commit()
    db.execute("DETACH DATABASE src")
    db.close()
    for suffix in ("-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    os.replace(fresh, path)


def bulk_load(path, n, rng, vocab, weights):
    without_reserve(path)
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous = OFF")
    t0 = time.time()
    base_ms = int(time.time() * 1000) - n  # one record per ms, ending now
    spaces = namespaces(n)
    sql = ("INSERT INTO episodes (rev, id, ns, kind, content, data, task, tags, at, agent, principal, uid, pid)"
           " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)")
    batch = []
    for rev in range(1, n + 1):
        batch.append((rev, f"ep_{rev}", ns_name(rng.randrange(spaces)), "observation", content(rng, vocab, weights), None,
                      None, "[]", base_ms + rev, f"agent-{rev % 16}", "local", os.getuid(), os.getpid()))
        if len(batch) == 50_000:
            db.executemany(sql, batch)
            db.commit()
            batch = []
            print(f"  loaded {rev} records ({time.time() - t0:.0f} s)", file=sys.stderr)
    if batch:
        db.executemany(sql, batch)
    db.execute("UPDATE mnemo_meta SET value = ? WHERE key = 'max_rev'", (n,))
    db.commit()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return time.time() - t0


def load_db(db_path, records, cache):
    """Fills db_path (created by mnemod) with `records` records, from the cache if there."""
    rng = random.Random(42)
    vocab = words_list(rng)
    weights = zipf_weights(VOCAB)
    cached = cache and os.path.join(cache, f"episodic-{records}.sqlite")
    if cached and os.path.exists(cached):
        shutil.copyfile(cached, db_path)
        for suffix in ("-wal", "-shm"):
            if os.path.exists(db_path + suffix):
                os.remove(db_path + suffix)
        return None, rng, vocab, weights
    seconds = bulk_load(db_path, records, rng, vocab, weights)
    if cached:
        os.makedirs(cache, exist_ok=True)
        shutil.copyfile(db_path, cached)
    return seconds, rng, vocab, weights


def load(args):
    seconds, _, vocab, weights = load_db(args.db, args.records, args.cache)
    rng = random.Random(7)  # the workload does not depend on whether the cache was used
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

    def call(self, method, params=None):
        self.n += 1
        self.s.sendall(json.dumps({"jsonrpc": "2.0", "id": self.n, "method": method, "params": params or {}}).encode() + b"\n")
        while b"\n" not in self.buf:
            chunk = self.s.recv(1 << 20)
            if not chunk:
                raise ConnectionError("mnemod closed the connection")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        msg = json.loads(line)
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
        stop(start(args.mnemod, sock, data))
        seconds, *_ = load_db(os.path.join(data, "episodic.sqlite"), args.records, args.cache)
        results["bulk_load_s"] = seconds and round(seconds, 1)
        p = start(args.mnemod, sock, data)
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
    lo = sub.add_parser("load", help="bulk-load a stopped mnemod's episodic.sqlite and write the workload")
    lo.add_argument("--db", required=True, help="the episodic.sqlite mnemod created")
    lo.add_argument("--records", type=int, required=True)
    lo.add_argument("--workload-out", required=True)
    lo.add_argument("--cache", help="keep/reuse the bulk-loaded database in this directory")
    sp = sub.add_parser("summarize-prune", help="time one summarize + prune pass")
    sp.add_argument("--mnemod", default=".build/release/mnemod")
    sp.add_argument("--records", type=int, default=1_000_000)
    sp.add_argument("--cache", help="keep/reuse the bulk-loaded database in this directory")
    sp.add_argument("--out", help="write the results as JSON here")
    args = ap.parse_args()
    load(args) if args.cmd == "load" else summarize_prune(args)


if __name__ == "__main__":
    main()
