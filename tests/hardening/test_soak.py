"""Soak: a bounded mixed workload for a fixed time; the daemon must stay flat.

Workers (all for ``MNEMO_HARDENING_SOAK_SECONDS``, 40 s by default, 30 min with
``MNEMO_HARDENING_LONG=1``): working-memory writes over a fixed key space (plain, CAS,
with TTLs that expire, transactions), claim acquire/renew/release cycles, replayed
result.put, inbox post/read/ack, episodic appends, queries and searches, semantic upserts
that replace records of a fixed id set (tombstones, compactions) and searches, and a
churn of short-lived connections and watches. A probe client times wm.get every 10 ms.

Sampled every second from /proc/PID: resident set size, open descriptors and threads.
After a warm-up (the first quarter), the last window (a fifth of the run) is compared with
the first window after the warm-up:

- descriptors: at most 4 more than the first window's maximum (connection churn);
- threads: at most 4 more than the first window's maximum (worker pools are bounded);
- RSS: the last window's median at most 20% + 16 MiB above the first window's median;
- latency: the probe's p99 in the last window at most 2.5x + 10 ms of the first window's
  (the 2-core machine is shared: other jobs move a Python client's p99 by tens of percent;
  a leak-like drift, latency growing with the run, goes well past that).

Every operation must succeed or fail only in the ways the workload expects (CONFLICT for a
lost compare-and-set race, CLAIMED for a held claim); the last acknowledged value of every
key is read back at the end.
"""
from __future__ import annotations

import random
import threading
import time
from collections import Counter
from typing import Any, Callable, Dict, List, Tuple

from harness import Daemon, median, percentile
from mnemo_client import Claimed, Client, Conflict

WORDS = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike staging deploy cache".split()


class Soak:
    def __init__(self, d: Daemon, seconds: float, rng: random.Random) -> None:
        self.d = d
        self.deadline = time.monotonic() + seconds
        self.rng = rng
        self.lock = threading.Lock()
        self.ops: Counter = Counter()
        self.errors: List[str] = []
        self.acked_writes = 0
        self.last_value: Dict[str, Any] = {}
        self.probe: List[Tuple[float, float]] = []   # (time, latency)

    def running(self) -> bool:
        return time.monotonic() < self.deadline

    def count(self, name: str, acked: bool = False) -> None:
        with self.lock:
            self.ops[name] += 1
            if acked:
                self.acked_writes += 1

    def fail(self, text: str) -> None:
        with self.lock:
            if len(self.errors) < 100:
                self.errors.append(text)

    def worker(self, name: str, body: Callable[[Client, random.Random], None]) -> threading.Thread:
        rng = random.Random(self.rng.random())

        def run() -> None:
            try:
                with Client(self.d.sock, agent=name, timeout=30) as c:
                    while self.running():
                        body(c, rng)
            except Exception as e:  # noqa: BLE001 - any surprise fails the test
                self.fail(f"{name}: {e!r}")

        t = threading.Thread(target=run, name=name, daemon=True)
        return t

    # -- workloads ----------------------------------------------------------------------------
    def wm(self, w: int) -> Callable[[Client, random.Random], None]:
        def body(c: Client, rng: random.Random) -> None:
            key = f"w{w}-{rng.randrange(200)}"
            r = rng.random()
            if r < 0.4:
                v = {"n": rng.randrange(10**9), "pad": "p" * rng.randrange(0, 512)}
                c.set("soak/wm", key, v)
                self.last_value[key] = v
                self.count("wm.set", True)
            elif r < 0.55:
                g = c.get("soak/wm", key)
                self.count("wm.get")
                if self.last_value.get(key) is not None and g.get("value") != self.last_value[key]:
                    self.fail(f"wm {key}: read {g.get('value')!r:.80}, last written {self.last_value[key]!r:.80}")
                if g.get("found"):
                    v = {"n": rng.randrange(10**9), "cas": True}
                    try:
                        c.set("soak/wm", key, v, if_version=g["version"])
                        self.last_value[key] = v
                        self.count("wm.set_cas", True)
                    except Conflict:
                        self.fail(f"CAS conflict on {key}, which only this worker writes")
            elif r < 0.7:
                c.set("soak/ttl", f"t{w}-{rng.randrange(2000)}", "x" * 100, ttl_ms=rng.randrange(50, 2000))
                self.count("wm.set_ttl", True)
            elif r < 0.8:
                k2 = f"w{w}-{rng.randrange(200)}"
                v = {"txn": rng.randrange(10**9)}
                c.txn([{"op": "set", "ns": "soak/wm", "key": key, "value": v},
                       {"op": "set", "ns": "soak/wm", "key": k2, "value": v}])
                self.last_value[key] = v
                self.last_value[k2] = v
                self.count("wm.txn", True)
            elif r < 0.9:
                c.list("soak/wm", prefix=f"w{w}-1", limit=50)
                self.count("wm.list")
            else:
                c.delete("soak/wm", key)
                self.last_value[key] = None
                self.count("wm.del", True)
        return body

    def coord(self, c: Client, rng: random.Random) -> None:
        res = f"r{rng.randrange(20)}"
        try:
            tok = c.acquire("soak/claims", res, 5000)["token"]
        except Claimed:
            self.count("claim.acquire_claimed")
            return
        self.count("claim.acquire", True)
        c.renew("soak/claims", res, tok, 5000)
        self.count("claim.renew", True)
        c.set("soak/claims", f"fenced-{res}", rng.randrange(1000), fence={"resource": res, "token": tok})
        self.count("wm.set_fenced", True)
        if not c.release("soak/claims", res, tok).get("released"):
            self.fail(f"release of {res} {tok} not released")
        self.count("claim.release", True)
        r = c.put_result("soak/claims", "job", f"idem-{rng.randrange(50)}", {"v": 1})
        self.count("result.put", bool(r.get("stored")))
        if rng.random() < 0.3:
            c.post("soak/inbox", "coord", "note", {"x": rng.randrange(100)})
            self.count("inbox.post", True)
            entries = c.read_inbox("soak/inbox", unacked_only=True, limit=50)["entries"]
            if entries:
                c.ack("soak/inbox", [e["id"] for e in entries])
            self.count("inbox.read+ack", True)

    def ep(self, c: Client, rng: random.Random) -> None:
        r = rng.random()
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randrange(3, 20)))
        if r < 0.5:
            c.call("ep.append", ns=f"soak/ep/{rng.randrange(5)}", kind="step", content=words, tags=["soak"])
            self.count("ep.append", True)
        elif r < 0.75:
            c.call("ep.query", ns="soak/ep", limit=20, order="desc")
            self.count("ep.query")
        else:
            c.call("ep.search", ns=f"soak/ep/{rng.randrange(5)}", text=" ".join(words.split()[:2]), limit=10)
            self.count("ep.search")

    def sem(self, c: Client, rng: random.Random) -> None:
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randrange(3, 12)))
        if rng.random() < 0.5:
            c.call("sem.upsert", ns="soak/sem", id=f"f{rng.randrange(300)}", text=text)
            self.count("sem.upsert", True)
        else:
            c.call("sem.search", ns="soak/sem", text=text, k=10)
            self.count("sem.search")

    def churn(self) -> threading.Thread:
        rng = random.Random(self.rng.random())

        def run() -> None:
            try:
                while self.running():
                    with Client(self.d.sock, agent="churn", timeout=30) as c:
                        c.get("soak/wm", "w0-1")
                        self.count("connect+get+close")
                        if rng.random() < 0.3:
                            w = c.watch("soak/wm")
                            c.set("soak/churn", "k", 1)
                            w.cancel()
                            self.count("watch", True)
                    time.sleep(0.02)
            except Exception as e:  # noqa: BLE001
                self.fail(f"churn: {e!r}")

        return threading.Thread(target=run, name="churn", daemon=True)

    def prober(self) -> threading.Thread:
        def run() -> None:
            try:
                with Client(self.d.sock, agent="probe", timeout=30) as c:
                    c.set("soak/probe", "k", 1)
                    while self.running():
                        t0 = time.perf_counter()
                        c.get("soak/probe", "k")
                        now = time.monotonic()
                        self.probe.append((now, time.perf_counter() - t0))
                        time.sleep(0.01)
            except Exception as e:  # noqa: BLE001
                self.fail(f"probe: {e!r}")

        return threading.Thread(target=run, name="probe", daemon=True)


def test_soak_resources_and_latency_stay_flat(daemons, rng, report, settings):
    seconds = settings.soak_seconds
    d: Daemon = daemons("soak", config=('durability = "normal"\nthreads = 2\n'
                                        # acknowledged inbox entries and results are kept for
                                        # the retention time: short, so the data set is bounded
                                        "[working]\nsweep_interval_ms = 50\ninbox_retention_ms = 2000\n"
                                        "result_retention_ms = 2000\n"
                                        "[semantic]\nmaintenance_interval_ms = 1000\n"))
    soak = Soak(d, seconds, rng)
    start = time.monotonic()
    threads = [soak.worker(f"wm{w}", soak.wm(w)) for w in range(2)]
    threads += [soak.worker("coord", soak.coord), soak.worker("ep", soak.ep), soak.worker("sem", soak.sem),
                soak.churn(), soak.prober()]
    for t in threads:
        t.start()
    samples: List[Tuple[float, int, int, int]] = []   # (t, rss kB, fds, threads)
    while any(t.is_alive() for t in threads):
        if not d.alive():
            break
        samples.append((time.monotonic() - start, d.rss_kb(), d.fd_count(), d.thread_count()))
        time.sleep(1.0)
        if time.monotonic() - start > seconds + 60:
            break
    for t in threads:
        t.join(timeout=30)
    alive = d.alive()
    # Every key's last acknowledged value (only its worker writes it).
    lost = 0
    if alive:
        with d.client("final") as c:
            for key, v in soak.last_value.items():
                g = c.get("soak/wm", key)
                if (g.get("value") if g.get("found") else None) != v:
                    lost += 1
    warm = seconds * 0.25
    window = seconds * 0.2
    first = [s for s in samples if warm <= s[0] < warm + window]
    last = [s for s in samples if s[0] >= seconds - window]
    p_first = [lat for t, lat in soak.probe if warm <= t - start < warm + window]
    p_last = [lat for t, lat in soak.probe if t - start >= seconds - window]
    rss_first = median([s[1] for s in first]) if first else 0
    rss_last = median([s[1] for s in last]) if last else 0
    fd_first = max((s[2] for s in first), default=0)
    fd_last = max((s[2] for s in last), default=0)
    th_first = max((s[3] for s in first), default=0)
    th_last = max((s[3] for s in last), default=0)
    p99_first = percentile(p_first, 99)
    p99_last = percentile(p_last, 99)
    total_ops = sum(soak.ops.values())
    report.record("soak", runs=1, operations=total_ops, faults=0, acknowledged_writes=soak.acked_writes,
                  data_lost=lost, seconds=round(seconds), ops_per_s=round(total_ops / seconds),
                  rss_mb_first=round(rss_first / 1024, 1), rss_mb_last=round(rss_last / 1024, 1),
                  rss_mb_max=round(max((s[1] for s in samples), default=0) / 1024, 1),
                  fds_first=fd_first, fds_last=fd_last, threads_first=th_first, threads_last=th_last,
                  probe_p99_ms_first=round(p99_first * 1000, 2), probe_p99_ms_last=round(p99_last * 1000, 2),
                  probe_p50_ms_last=round(percentile(p_last, 50) * 1000, 2),
                  rss_mb_series=[round(s[1] / 1024, 1) for s in samples[::max(1, len(samples) // 12)]])
    assert alive, f"mnemod died during the soak:\n{d.log_tail()}"
    assert not soak.errors, "unexpected errors:\n" + "\n".join(soak.errors[:20])
    assert first and last and p_first and p_last, "not enough samples"
    assert lost == 0, f"{lost} keys do not hold their last acknowledged value"
    assert fd_last <= fd_first + 4, f"open descriptors grew: {fd_first} -> {fd_last}"
    assert th_last <= th_first + 4, f"threads grew: {th_first} -> {th_last}"
    assert rss_last <= rss_first * 1.2 + 16 * 1024, \
        f"RSS grew: {rss_first / 1024:.1f} MiB -> {rss_last / 1024:.1f} MiB"
    assert p99_last <= 2.5 * p99_first + 0.010, \
        f"probe p99 drifted: {p99_first * 1000:.2f} ms -> {p99_last * 1000:.2f} ms"
