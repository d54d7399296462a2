#!/usr/bin/env python3
"""Exact top-10 vector search: mnemod over its Unix socket, side by side with numpy
(`X @ q` + argpartition, in-process), FAISS IndexFlatIP (in-process, when installed) and
sqlite-vec (`vec0`, brute-force KNN, in-process through apsw), in one run on the same
vectors (d = 384, unit length, cosine) and the same queries.

    python3 benchmarks/semantic_bench.py --mnemod .build/release/mnemod \
        --sizes 10000 100000 1000000 --out benchmarks/results/2026-11-22-semantic.json

Needs numpy; optional: faiss-cpu, sqlite-vec + apsw (`pip install numpy faiss-cpu
sqlite-vec apsw`). Peers that are not installed are reported as missing.

Loading: N vectors are written straight into mnemod's `semantic.sqlite` (the schema
mnemod created) while it is stopped, then mnemod is started and loads them, as after a
restart. (Through `sem.upsert` every write also reports near-duplicates, which scans
the collection: loading N records one by one costs O(N^2).)

Measured per N: single-query latency (p50/p99, one client, queries one after another,
vector_b64), throughput of one batch line of 64 queries (mnemod answers them with one
sgemm pass per block of rows), the same for the peers, mnemod's RSS, and a check that
mnemod's top-10 ids equal numpy's (exact search).
"""

import argparse
import base64
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

import numpy as np

D = 384
K = 10


def pct(samples, p):
    s = sorted(samples)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def summary(samples_s):
    us = [x * 1e6 for x in samples_s]
    return {"n": len(us), "p50_us": pct(us, 50), "p90_us": pct(us, 90), "p99_us": pct(us, 99), "max_us": max(us)}


class Client:
    """A minimal line client (no library overhead)."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.buf = b""
        self.next_id = 0
        self.call("session.hello", {"agent": "bench"})

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("mnemod closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def call(self, method, params):
        self.next_id += 1
        self.sock.sendall(json.dumps({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params}).encode() + b"\n")
        r = self.line()
        if "error" in r:
            raise RuntimeError(f"{method}: {r['error']}")
        return r["result"]

    def batch(self, calls):
        reqs = [{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in enumerate(calls)]
        self.sock.sendall(json.dumps(reqs).encode() + b"\n")
        return self.line()


class Mnemod:
    def __init__(self, binary, tmp):
        self.binary = binary
        self.tmp = tmp
        self.socket = os.path.join(tmp, "m.sock")
        self.data = os.path.join(tmp, "data")
        self.proc = None

    def start(self):
        t0 = time.monotonic()
        self.proc = subprocess.Popen([self.binary, "--socket", self.socket, "--data-dir", self.data,
                                      "--log-level", "warning"], stdin=subprocess.DEVNULL)
        while True:
            try:
                Client(self.socket).call("admin.health", {})
                return time.monotonic() - t0
            except OSError:
                if self.proc.poll() is not None:
                    sys.exit(f"mnemod exited with {self.proc.returncode}")
                time.sleep(0.05)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(60)

    def rss_bytes(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0


def load_into_mnemod(mnemod, X, ns):
    """Writes X into the stopped daemon's semantic.sqlite, as records v0..v{N-1}."""
    db = sqlite3.connect(os.path.join(mnemod.data, "semantic.sqlite"))
    db.execute("PRAGMA synchronous = OFF")
    db.execute("INSERT INTO collections (ns, dims, metric, model) VALUES (?, ?, 'cosine', 'client')", (ns, D))
    now = int(time.time() * 1000)
    rows = ((ns, f"v{i}", f"fact {i}", None, "[]", None, None, None, i + 1, "bench", "local", 0, 0, now,
             X[i].astype("<f4").tobytes()) for i in range(len(X)))
    db.executemany("INSERT INTO facts (ns, id, text, data, tags, confidence, superseded_by, expires_at, version, "
                   "agent, principal, uid, pid, at, vector) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    db.execute("UPDATE mnemo_meta SET value = ? WHERE key = 'max_rev'", (len(X),))
    db.commit()
    db.close()


def bench_mnemod(args, X, Q, n_single, n_batch):
    tmp = tempfile.mkdtemp(prefix="mnemo-sem-bench-")
    try:
        m = Mnemod(args.mnemod, tmp)
        m.start()  # creates the schema
        m.stop()
        t0 = time.monotonic()
        load_into_mnemod(m, X, "bench/vectors")
        write_s = time.monotonic() - t0
        load_s = m.start()
        rss = m.rss_bytes()
        c = Client(m.socket)
        b64 = [base64.b64encode(q.astype("<f4").tobytes()).decode() for q in Q]
        ids = []
        for i in range(min(5, len(Q))):  # warm-up
            c.call("sem.search", {"ns": "bench", "vector_b64": b64[i], "k": K})
        lat = []
        for i in range(n_single):
            q = b64[i % len(b64)]
            t = time.perf_counter()
            r = c.call("sem.search", {"ns": "bench", "vector_b64": q, "k": K})
            lat.append(time.perf_counter() - t)
            if i < len(b64):
                ids.append([int(h["id"][1:]) for h in r["hits"]])
        calls = [("sem.search", {"ns": "bench", "vector_b64": b64[j % len(b64)], "k": K}) for j in range(64)]
        c.batch(calls)  # warm-up
        t = time.perf_counter()
        for _ in range(n_batch):
            reply = c.batch(calls)
            assert all("result" in r for r in reply), reply[:1]
        batch_s = time.perf_counter() - t
        stats = c.call("admin.stats", {})
        m.stop()
        return {"single": summary(lat), "batch64_qps": 64 * n_batch / batch_s, "load_s": load_s,
                "sqlite_write_s": write_s, "rss_bytes": rss, "blas": stats.get("blas"), "ids": ids}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def numpy_topk(X, q):
    s = X @ q
    idx = np.argpartition(-s, K)[:K]
    return idx[np.argsort(-s[idx], kind="stable")]


def bench_numpy(X, Q, n_single, n_batch):
    for i in range(5):
        numpy_topk(X, Q[i % len(Q)])
    lat, ids = [], []
    for i in range(n_single):
        q = Q[i % len(Q)]
        t = time.perf_counter()
        top = numpy_topk(X, q)
        lat.append(time.perf_counter() - t)
        if i < len(Q):
            ids.append([int(x) for x in top])
    Q64 = np.stack([Q[j % len(Q)] for j in range(64)])
    t = time.perf_counter()
    for _ in range(n_batch):
        S = Q64 @ X.T
        part = np.argpartition(-S, K, axis=1)[:, :K]
        np.take_along_axis(part, np.argsort(-np.take_along_axis(S, part, axis=1), axis=1), axis=1)
    batch_s = time.perf_counter() - t
    return {"single": summary(lat), "batch64_qps": 64 * n_batch / batch_s, "ids": ids}


def bench_faiss(X, Q, n_single, n_batch):
    try:
        import faiss
    except ImportError:
        return {"missing": "pip install faiss-cpu"}
    index = faiss.IndexFlatIP(D)
    index.add(X)
    for i in range(5):
        index.search(Q[i % len(Q)][None, :], K)
    lat = []
    for i in range(n_single):
        q = Q[i % len(Q)][None, :]
        t = time.perf_counter()
        index.search(q, K)
        lat.append(time.perf_counter() - t)
    Q64 = np.stack([Q[j % len(Q)] for j in range(64)])
    t = time.perf_counter()
    for _ in range(n_batch):
        index.search(Q64, K)
    return {"single": summary(lat), "batch64_qps": 64 * n_batch / (time.perf_counter() - t)}


def bench_sqlite_vec(X, Q, n_single):
    try:
        import apsw
        import sqlite_vec
    except ImportError:
        return {"missing": "pip install sqlite-vec apsw"}
    db = apsw.Connection(":memory:")
    db.enable_load_extension(True)
    db.load_extension(sqlite_vec.loadable_path())
    db.execute(f"CREATE VIRTUAL TABLE v USING vec0(embedding float[{D}] distance_metric=cosine)")
    with db:
        db.executemany("INSERT INTO v (rowid, embedding) VALUES (?, ?)",
                       ((i, X[i].astype("<f4").tobytes()) for i in range(len(X))))
    sql = "SELECT rowid, distance FROM v WHERE embedding MATCH ? AND k = ? ORDER BY distance"
    for i in range(2):
        list(db.execute(sql, (Q[i].astype("<f4").tobytes(), K)))
    lat, ids = [], []
    for i in range(n_single):
        q = Q[i % len(Q)].astype("<f4").tobytes()
        t = time.perf_counter()
        rows = list(db.execute(sql, (q, K)))
        lat.append(time.perf_counter() - t)
        ids.append([r[0] for r in rows])
    return {"single": summary(lat), "ids": ids}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mnemod", default=".build/release/mnemod")
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--out", help="write JSON here and a Markdown report beside it")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    results = {"d": D, "k": K, "machine": os.uname().nodename, "cpus": os.cpu_count(),
               "numpy_blas": np.__config__.CONFIG["Build Dependencies"]["blas"].get("name"),
               "openblas_num_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"), "runs": []}
    for n in args.sizes:
        X = rng.standard_normal((n, D), dtype=np.float32)
        X /= np.linalg.norm(X, axis=1, keepdims=True)
        Q = rng.standard_normal((64, D), dtype=np.float32)
        Q /= np.linalg.norm(Q, axis=1, keepdims=True)
        n_single = 400 if n <= 10_000 else 200 if n <= 100_000 else 40
        n_batch = 20 if n <= 100_000 else 3
        n_vec = 100 if n <= 10_000 else 30 if n <= 100_000 else 5
        print(f"N={n}: mnemod ...", file=sys.stderr, flush=True)
        run = {"n": n, "mnemod": bench_mnemod(args, X, Q, n_single, n_batch)}
        print(f"N={n}: numpy, faiss, sqlite-vec ...", file=sys.stderr, flush=True)
        run["numpy"] = bench_numpy(X, Q, n_single, n_batch)
        run["faiss"] = bench_faiss(X, Q, n_single, n_batch)
        run["sqlite_vec"] = bench_sqlite_vec(X, Q, n_vec)
        mine, ref = run["mnemod"].pop("ids"), run["numpy"].pop("ids")
        run["exact_same_top10_as_numpy"] = sum(a == b for a, b in zip(mine, ref)) / len(ref)
        if "ids" in run["sqlite_vec"]:
            theirs = run["sqlite_vec"].pop("ids")
            run["sqlite_vec_same_top10_as_numpy"] = sum(a == b for a, b in zip(theirs, ref)) / len(theirs)
        results["runs"].append(run)
        print(json.dumps(run, indent=1), file=sys.stderr, flush=True)
    report = markdown(results)
    print(report)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)
        with open(os.path.splitext(args.out)[0] + ".md", "w") as f:
            f.write(report)


def markdown(r):
    lines = [f"# Exact top-{r['k']} search, d = {r['d']}, cosine ({r['cpus']} CPUs, OPENBLAS_NUM_THREADS={r['openblas_num_threads']})", "",
             "mnemod is measured end to end over its Unix socket (vector_b64, one client); numpy, FAISS and",
             "sqlite-vec in-process. Ratios are mnemod / peer: below 1 means mnemod is faster.", "",
             "| N | mnemod p50 | mnemod p99 | numpy p50 | FAISS p50 | sqlite-vec p50 | mnemod/numpy | mnemod/sqlite-vec | exact | mnemod 64-batch q/s | numpy 64-batch q/s | FAISS 64-batch q/s | mnemod RSS |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for run in r["runs"]:
        m, npy, fa, sv = run["mnemod"], run["numpy"], run["faiss"], run["sqlite_vec"]

        def ms(x):
            return f"{x / 1000:.2f} ms"
        fa50 = ms(fa["single"]["p50_us"]) if "single" in fa else "n/a"
        sv50 = ms(sv["single"]["p50_us"]) if "single" in sv else "n/a"
        ratio_sv = f"{m['single']['p50_us'] / sv['single']['p50_us']:.3f}" if "single" in sv else "n/a"
        fa_q = f"{fa['batch64_qps']:.0f}" if "batch64_qps" in fa else "n/a"
        lines.append(f"| {run['n']:,} | {ms(m['single']['p50_us'])} | {ms(m['single']['p99_us'])} | {ms(npy['single']['p50_us'])} | "
                     f"{fa50} | {sv50} | {m['single']['p50_us'] / npy['single']['p50_us']:.2f} | {ratio_sv} | "
                     f"{run['exact_same_top10_as_numpy']:.0%} | {m['batch64_qps']:.0f} | {npy['batch64_qps']:.0f} | {fa_q} | "
                     f"{m['rss_bytes'] / 1e9:.2f} GB |")
    lines += ["", "Float32 floor for the vectors alone: N x 384 x 4 bytes (1.54 GB at 1M).",
              f"mnemod's BLAS: {r['runs'][0]['mnemod'].get('blas')}; numpy's: {r['numpy_blas']}.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
