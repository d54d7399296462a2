#!/usr/bin/env python3
"""Semantic-search helper of mnemo-bench: makes the vectors and measures the in-process
peers. mnemod itself is measured by mnemo-bench over its socket (workload `sem`):

    cd benchmarks && .build/release/mnemo-bench --workloads sem --sem-sizes 10000,100000,1000000

mnemo-bench calls two subcommands, on the same vectors (N unit vectors, d = 384, and 64
unit queries, drawn from numpy's generator seeded with (seed, N), so both calls draw the
same ones):

  vectors  writes the N vectors as raw little-endian float32 and the queries (base64);
           mnemo-bench loads the vectors into mnemod through its socket (`sem.upsert`
           batch lines of 400 `vector_b64` upserts) and times that ingest.
  peers    measures the in-process peers on the same vectors: ingest (FAISS
           `IndexFlatIP.add` of all N; sqlite-vec: N `vec0` inserts in one transaction)
           and exact top-10: numpy (`X @ q` + argpartition), FAISS and sqlite-vec
           (brute-force KNN through apsw): single-query latency samples (ns) and 64-query
           batches, plus numpy's top-10 ids for the first 64 queries (mnemo-bench checks
           mnemod returns the same: the search is exact).

Needs numpy; optional: faiss-cpu, sqlite-vec + apsw. Missing peers are reported as such.
"""

import argparse
import base64
import json
import os
import time

import numpy as np

D = 384
K = 10
QUERIES = 64


def data(n, seed):
    rng = np.random.default_rng([seed, n])
    X = rng.standard_normal((n, D), dtype=np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    Q = rng.standard_normal((QUERIES, D), dtype=np.float32)
    Q /= np.linalg.norm(Q, axis=1, keepdims=True)
    return X, Q


def vectors(args):
    X, Q = data(args.n, args.seed)
    X.astype("<f4").tofile(args.vectors_out)
    with open(args.queries_out, "w") as f:
        json.dump({"d": D, "b64": [base64.b64encode(q.astype("<f4").tobytes()).decode() for q in Q]}, f)


def timed(fn, n):
    out = []
    for i in range(n):
        t = time.perf_counter_ns()
        fn(i)
        out.append(time.perf_counter_ns() - t)
    return out


def numpy_topk(X, q):
    s = X @ q
    idx = np.argpartition(-s, K)[:K]
    return idx[np.argsort(-s[idx], kind="stable")]


def peer_numpy(X, Q, args):
    for i in range(5):
        numpy_topk(X, Q[i % QUERIES])
    ids = [[int(x) for x in numpy_topk(X, q)] for q in Q]
    single = timed(lambda i: numpy_topk(X, Q[i % QUERIES]), args.samples)

    def batch(_):
        S = Q @ X.T
        part = np.argpartition(-S, K, axis=1)[:, :K]
        np.take_along_axis(part, np.argsort(-np.take_along_axis(S, part, axis=1), axis=1), axis=1)
    batch(0)
    return {"single_ns": single, "batch64_ns": timed(batch, args.batches), "ids": ids}


def peer_faiss(X, Q, args):
    try:
        import faiss
    except ImportError:
        return {"missing": "pip install faiss-cpu"}
    index = faiss.IndexFlatIP(D)
    t = time.perf_counter_ns()
    index.add(X)
    add_ns = time.perf_counter_ns() - t
    for i in range(5):
        index.search(Q[i % QUERIES][None, :], K)
    single = timed(lambda i: index.search(Q[i % QUERIES][None, :], K), args.samples)
    index.search(Q, K)
    return {"single_ns": single, "batch64_ns": timed(lambda _: index.search(Q, K), args.batches),
            "ingest_ns": add_ns, "version": faiss.__version__}


def peer_sqlite_vec(X, Q, ids, args):
    if args.sqlite_vec_samples <= 0:
        return {"missing": "not measured at this size (--sqlite-vec-samples 0)"}
    try:
        import apsw
        import sqlite_vec
    except ImportError:
        return {"missing": "pip install sqlite-vec apsw"}
    db = apsw.Connection(":memory:")
    db.enable_load_extension(True)
    db.load_extension(sqlite_vec.loadable_path())
    db.execute(f"CREATE VIRTUAL TABLE v USING vec0(embedding float[{D}] distance_metric=cosine)")
    t = time.perf_counter_ns()
    with db:
        db.executemany("INSERT INTO v (rowid, embedding) VALUES (?, ?)",
                       ((i, X[i].astype("<f4").tobytes()) for i in range(len(X))))
    insert_ns = time.perf_counter_ns() - t
    sql = "SELECT rowid, distance FROM v WHERE embedding MATCH ? AND k = ? ORDER BY distance"
    qb = [q.astype("<f4").tobytes() for q in Q]
    list(db.execute(sql, (qb[0], K)))
    got = []
    single = timed(lambda i: got.append([r[0] for r in db.execute(sql, (qb[i % QUERIES], K))]), args.sqlite_vec_samples)
    same = sum(a == b for a, b in zip(got, ids)) / len(got)
    return {"single_ns": single, "ingest_ns": insert_ns, "same_top10_as_numpy": same, "version": sqlite_vec.__version__ if hasattr(sqlite_vec, "__version__") else None}


def peers(args):
    X, Q = data(args.n, args.seed)
    out = {"n": args.n, "d": D, "k": K, "numpy_version": np.__version__,
           "numpy_blas": np.__config__.CONFIG["Build Dependencies"]["blas"].get("name"),
           "openblas_num_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default")}
    out["numpy"] = peer_numpy(X, Q, args)
    out["faiss"] = peer_faiss(X, Q, args)
    out["sqlite_vec"] = peer_sqlite_vec(X, Q, out["numpy"]["ids"], args)
    with open(args.out, "w") as f:
        json.dump(out, f)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    lo = sub.add_parser("vectors", help="write the N vectors (raw float32) and the queries")
    lo.add_argument("--n", type=int, required=True)
    lo.add_argument("--seed", type=int, default=7)
    lo.add_argument("--vectors-out", required=True, help="raw little-endian float32, N x 384")
    lo.add_argument("--queries-out", required=True)
    pe = sub.add_parser("peers", help="measure numpy, FAISS and sqlite-vec on the same vectors")
    pe.add_argument("--n", type=int, required=True)
    pe.add_argument("--seed", type=int, default=7)
    pe.add_argument("--samples", type=int, default=200)
    pe.add_argument("--batches", type=int, default=10)
    pe.add_argument("--sqlite-vec-samples", type=int, default=10)
    pe.add_argument("--out", required=True)
    args = ap.parse_args()
    vectors(args) if args.cmd == "vectors" else peers(args)


if __name__ == "__main__":
    main()
