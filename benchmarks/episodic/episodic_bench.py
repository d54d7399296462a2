#!/usr/bin/env python3
"""Episodic-memory benchmark: 1M records, append throughput, query/search latency, and one
summarize + prune pass, against a real mnemod over its Unix socket.

    python3 benchmarks/episodic/episodic_bench.py --mnemod .build/release/mnemod [--records 1000000]

Steps (all bounded):
  1. start mnemod once on an empty data dir (it creates and migrates episodic.sqlite), stop it;
  2. bulk-load the records straight into that SQLite file with Python's sqlite3 (same schema,
     same FTS5 triggers; ids ep_<rev>, 1000 namespaces, Zipf-distributed words), and set
     max_rev, so loading takes a minute instead of a socket round trip per record;
  3. restart mnemod (durability "normal", the default) on it;
  4. ep.append throughput: 1 client, then 32 clients (one process and connection each),
     each sending one append at a time for --seconds;
  5. ep.query (latest 20 of a random namespace, order desc) and ep.search (two words of
     medium frequency in a random namespace): --samples calls each from one client;
     percentiles measured by the client (Python, includes its overhead) and by the server
     (admin.stats);
  6. one summarize + prune pass: ep.summarize of the 100 oldest records of every namespace,
     then ep.prune {ns: "bench", policy: {max_count: 900}} over all of them.
"""
import argparse
import itertools
import json
import multiprocessing as mp
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "clients", "python"))
import mnemo  # noqa: E402

NAMESPACES = 1000
VOCAB = 5000


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


def ns_name(i):
    return f"bench/a{i}/log"


def start(binary, sock, data):
    log = open(os.path.join(os.path.dirname(sock), "mnemod.log"), "ab")
    p = subprocess.Popen([binary, "--socket", sock, "--data-dir", data, "--log-level", "warning"],
                         stdout=log, stderr=log)
    for _ in range(600):
        try:
            c = mnemo.Client(sock, agent="bench")
            c.call("admin.health")
            c.close()
            return p
        except Exception:
            time.sleep(0.05)
    raise SystemExit("mnemod did not start")


def stop(p):
    p.terminate()
    p.wait(30)


def bulk_load(path, n, rng, vocab, weights):
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous = OFF")
    t0 = time.time()
    base_ms = int(time.time() * 1000) - n  # one record per ms, ending now
    batch = []
    for rev in range(1, n + 1):
        content = " ".join(rng.choices(vocab, cum_weights=weights, k=rng.randint(8, 20)))
        batch.append((rev, f"ep_{rev}", ns_name(rng.randrange(NAMESPACES)), "observation", content, None,
                      None, "[]", base_ms + rev, f"agent-{rev % 16}", "local", os.getuid(), os.getpid()))
        if len(batch) == 50_000:
            db.executemany("INSERT INTO episodes (rev, id, ns, kind, content, data, task, tags, at, agent, principal, uid, pid)"
                           " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", batch)
            db.commit()
            batch = []
            print(f"  loaded {rev} records ({time.time() - t0:.0f} s)", file=sys.stderr)
    if batch:
        db.executemany("INSERT INTO episodes (rev, id, ns, kind, content, data, task, tags, at, agent, principal, uid, pid)"
                       " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", batch)
    db.execute("UPDATE mnemo_meta SET value = ? WHERE key = 'max_rev'", (n,))
    db.commit()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return time.time() - t0


class Raw:
    """A minimal blocking JSON-RPC connection (less client overhead than the full client,
    so the load generator costs the two shared cores as little as possible)."""

    def __init__(self, path, agent):
        import socket
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


def appender(sock, start_at, seconds, seed, vocab, weights, out):
    rng = random.Random(seed)
    c = Raw(sock, f"writer-{seed}")
    # Contents are made before the clock starts: the client should cost as little as possible.
    contents = [" ".join(rng.choices(vocab, cum_weights=weights, k=rng.randint(8, 20))) for _ in range(2000)]
    n = 0
    time.sleep(max(0.0, start_at - time.time()))
    end = start_at + seconds
    while time.time() < end:
        c.call("ep.append", {"ns": ns_name(rng.randrange(NAMESPACES)), "kind": "observation",
                             "content": contents[n % len(contents)]})
        n += 1
    out.put(n)


def throughput(sock, clients, seconds, vocab, weights):
    """Appends per second while every client runs: all start at one agreed moment and
    stop sending at start + seconds; replies still in flight then are waited for."""
    q = mp.Queue()
    start_at = time.time() + 2 + clients * 0.05
    procs = [mp.Process(target=appender, args=(sock, start_at, seconds, 1000 + i, vocab, weights, q)) for i in range(clients)]
    for p in procs:
        p.start()
    total = sum(q.get() for _ in procs)
    elapsed = time.time() - start_at
    for p in procs:
        p.join()
    return total, elapsed


def pct(samples, p):
    s = sorted(samples)
    return s[min(len(s) - 1, int(len(s) * p / 100))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mnemod", default=".build/release/mnemod")
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--dir", default=None, help="work directory (default: a temporary one, removed)")
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    ap.add_argument("--cache", default=None, help="keep/reuse the bulk-loaded database in this directory")
    args = ap.parse_args()
    rng = random.Random(42)
    vocab = words_list(rng)
    weights = zipf_weights(VOCAB)
    work = args.dir or tempfile.mkdtemp(prefix="mnemo-ep-bench-")
    os.makedirs(work, exist_ok=True)
    sock, data = os.path.join(work, "m.sock"), os.path.join(work, "data")
    results = {"records": args.records, "namespaces": NAMESPACES}
    try:
        p = start(args.mnemod, sock, data)
        stop(p)
        db_path = os.path.join(data, "episodic.sqlite")
        cache = args.cache and os.path.join(args.cache, f"episodic-{args.records}.sqlite")
        if cache and os.path.exists(cache):
            print(f"reusing the bulk-loaded {cache}", file=sys.stderr)
            shutil.copyfile(cache, db_path)
            for suffix in ("-wal", "-shm"):
                if os.path.exists(db_path + suffix):
                    os.remove(db_path + suffix)
        else:
            print(f"bulk-loading {args.records} records...", file=sys.stderr)
            results["bulk_load_s"] = round(bulk_load(db_path, args.records, rng, vocab, weights), 1)
            if cache:
                os.makedirs(args.cache, exist_ok=True)
                shutil.copyfile(db_path, cache)
        p = start(args.mnemod, sock, data)
        try:
            for clients in (1, 32):
                n, secs = throughput(sock, clients, args.seconds, vocab, weights)
                results[f"append_{clients}_clients_per_s"] = round(n / secs)
                print(f"ep.append, {clients} client(s): {n} in {secs:.1f} s = {n / secs:.0f}/s", file=sys.stderr)
                time.sleep(1)
            c = Raw(sock, "reader")
            lat = {"ep.query": [], "ep.search": []}
            mid = vocab[50:1000]
            for _ in range(args.samples):
                ns = ns_name(rng.randrange(NAMESPACES))
                t = time.perf_counter()
                r = c.call("ep.query", {"ns": ns, "order": "desc", "limit": 20})
                lat["ep.query"].append((time.perf_counter() - t) * 1e6)
                assert 0 < len(r["records"]) <= 20
                t = time.perf_counter()
                c.call("ep.search", {"ns": ns, "text": " ".join(rng.sample(mid, 2)), "limit": 10})
                lat["ep.search"].append((time.perf_counter() - t) * 1e6)
            stats = c.call("admin.stats")
            for m, s in lat.items():
                srv = stats["methods"][m]
                results[m] = {"client_p50_us": round(pct(s, 50)), "client_p99_us": round(pct(s, 99)),
                              "server_p50_us": srv["p50_us"], "server_p99_us": srv["p99_us"], "calls": len(s)}
                print(f"{m}: {results[m]}", file=sys.stderr)
            total = stats["episodic"]["records"]
            t0 = time.monotonic()
            summarized = summaries = 0
            for i in range(NAMESPACES):
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
            print(f"summarize + prune: {results['summarize_prune_pass']}", file=sys.stderr)
        finally:
            stop(p)
        results["db_bytes"] = os.path.getsize(os.path.join(data, "episodic.sqlite"))
    finally:
        if not args.dir:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(results, indent=1))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
