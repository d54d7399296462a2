"""Simulated power loss under the mixed write load of test_crash.py.

mnemod runs under ``powerloss/unsynced.c`` (LD_PRELOAD), which logs the pre-image of
every change to the files of its data directory and the start and end of every
fsync/fdatasync. At a random moment mnemod gets SIGKILL, then the harness "pulls the
plug": every change no completed sync made durable is undone (``powerloss.pull_plug``).
Sometimes the following start-up is killed and unplugged too. Then `mnemo check
--data-dir` runs (its exit code is recorded), every .sqlite file passes PRAGMA
integrity_check (on a copy), mnemod restarts (a refusal to start or a degraded tier is
recorded and fails the test: a power loss leaves torn tails and holes of zeros, not
damage), and the ledger is checked (mixedload.check_after_restart):

- ``strict``: every acknowledged write of every tier is there, exactly as in test_crash.
- ``normal``: a write acknowledged at time a (CLOCK_MONOTONIC, taken when its reply
  arrived) had to survive if a sync of the file that holds it began after a and completed
  before the kill: a working/journal-*.log for wm keys, TTL keys and claims,
  episodic.sqlite-wal for ep, semantic.sqlite-wal for sem (in WAL mode a commit is in the
  -wal file until a checkpoint, which syncs the -wal first). Other acknowledged writes may
  be rolled back (to an older acknowledged value, never to a value nobody wrote); they
  are counted and reported with their age at the kill. The brief's broader rule (any sync
  of working/*, episodic.sqlite*, semantic.sqlite* after a) is evaluated too and reported
  as ``lost_broad_rule``: a snapshot's fsync or a database file's fsync after a does not
  make a record in a newer log or an unsynced -wal frame durable, so it is a figure, not a
  failure.

In both modes: revisions and fencing tokens never go below an acknowledged one and new
ones are above every one seen (mixedload.check_revisions); sem.search results taken
before the kill are reproduced bit for bit in ``strict`` (in ``normal`` a search may have
seen a record that the power loss then took).

Knobs: MNEMO_POWERLOSS_ROUNDS (crash points per mode; default 6, 40 with
MNEMO_HARDENING_LONG=1), MNEMO_POWERLOSS_ROUND_SECONDS (longest load before a kill;
default 2.5, 6 long), MNEMO_HARDENING_SEED.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter, defaultdict
from typing import Dict, List, Optional

import pytest

import powerloss
from harness import SETTINGS, _env_float, _env_int, integrity_check_copies, new_workdir
from mixedload import (LossPolicy, MUST_KEEP_ALL, Ledger, check_after_restart, check_revisions, config_for,
                       start_load, stop_load)

ROUNDS = _env_int("MNEMO_POWERLOSS_ROUNDS", 40 if SETTINGS.long else 6)
ROUND_SECONDS = _env_float("MNEMO_POWERLOSS_ROUND_SECONDS", 6.0 if SETTINGS.long else 2.5)


@pytest.fixture(scope="module")
def shim():
    """unsynced.so, built for this run (skipped without a C compiler)."""
    out = tempfile.mkdtemp(prefix="mh-shim-", dir="/tmp")
    try:
        try:
            path = powerloss.compile_shim(out)
        except RuntimeError as e:
            pytest.skip(str(e))
        except subprocess.CalledProcessError as e:
            pytest.fail(f"the power-loss shim does not build:\n{e.stderr}")
        yield path
    finally:
        shutil.rmtree(out, ignore_errors=True)


@pytest.fixture
def shim_daemons(request):
    """Like conftest's ``daemons`` for daemons under the shim: killed at the end, their
    directory removed after a pass and kept (path printed) after a failure."""
    made = []

    def make(tag: str, config: str, shim_path: Optional[str]):
        d = powerloss.make_shim_daemon(new_workdir(tag), config, shim_path)
        made.append(d)
        return d

    try:
        yield make
    finally:
        for d in made:
            try:
                d.kill9()
            except Exception:  # noqa: BLE001 - teardown must reach every daemon
                pass
        rep = getattr(request.node, "rep_call", None)
        failed = rep is None or rep.failed
        for d in made:
            if failed:
                print(f"\n[hardening] kept {d.workdir} (log: {d.log_path}, undo logs: {d.undo_dir})")
            else:
                shutil.rmtree(d.workdir, ignore_errors=True)


# -- the shim on its own ------------------------------------------------------------------------

CHILD = textwrap.dedent(r"""
    import os, sys, time
    d, outside = sys.argv[1], sys.argv[2]
    W = os.O_WRONLY | os.O_CREAT
    RW = os.O_RDWR | os.O_CREAT
    def f(name, flags=RW):
        return os.open(os.path.join(d, name), flags, 0o600)
    # a: write, sync, then overwrite, extend and grow: only the synced bytes remain
    a = f("a.log")
    os.write(a, b"A" * 5000)
    t0 = time.monotonic_ns(); os.fsync(a); t1 = time.monotonic_ns()
    os.pwrite(a, b"B" * 100, 10)
    os.write(a, b"C" * 3000)
    os.ftruncate(a, 9000)
    # b: never synced: empty
    b = f("b.log"); os.write(b, b"x" * 4096)
    # c: synced, then cut short: whole again
    c = f("c.log"); os.write(c, b"D" * 8192); os.fdatasync(c); os.ftruncate(c, 100)
    # e: synced, closed, reopened with O_TRUNC (write-only) and rewritten: the old content
    e = f("e.log"); os.write(e, b"E" * 1000); os.fsync(e); os.close(e)
    e = f("e.log", os.O_WRONLY | os.O_TRUNC); os.write(e, b"F" * 10)
    # g: synced, then space reserved (posix_fallocate) and zeros written: the old size
    g = f("g.log"); os.write(g, b"G" * 10); os.fsync(g)
    os.posix_fallocate(g, 0, 1 << 20); os.pwrite(g, bytes(1 << 19), 4096)
    # h: writev after a sync; a second sync covers the first part of what follows
    h = f("h.log"); os.write(h, b"H" * 10); os.fsync(h)
    os.writev(h, [b"I" * 5, b"J" * 5]); os.fdatasync(h); os.pwrite(h, b"K" * 4, 0)
    # u: synced and unlinked; then n: a new file (maybe reusing the inode), never synced
    u = f("u.log"); os.write(u, b"U" * 64); os.fsync(u); os.close(u); os.unlink(os.path.join(d, "u.log"))
    n = f("n.log"); os.write(n, b"N" * 64)
    # r: written to a temporary name, synced, renamed (durable at once), then appended to
    r = f("r.tmp", W); os.write(r, b"R" * 300); os.fsync(r)
    os.rename(os.path.join(d, "r.tmp"), os.path.join(d, "r.log")); os.write(r, b"S" * 50)
    # not tracked: -shm, LOCK, files outside the directory
    for name in ("x.sqlite-shm", "LOCK"):
        x = f(name); os.write(x, b"Z" * 100)
    o = os.open(os.path.join(outside, "o.log"), RW, 0o600); os.write(o, b"O" * 100)
    print(t0, t1, flush=True)
    print("ready", flush=True)
    time.sleep(60)
""")


def test_powerloss_shim_keeps_only_synced_bytes(shim, tmp_path):
    d = tmp_path / "data"
    outside = tmp_path / "outside"
    d.mkdir()
    outside.mkdir()
    log = tmp_path / "undo.log"
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    proc = subprocess.Popen([sys.executable, str(script), str(d), str(outside)], stdout=subprocess.PIPE,
                            env=powerloss.shim_env(shim, str(d), str(log)), text=True)
    try:
        t0, t1 = (int(x) for x in proc.stdout.readline().split())
        assert proc.stdout.readline().strip() == "ready"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    before = {p.name: p.read_bytes() for p in d.iterdir()}
    assert before["a.log"] != b"A" * 5000 and len(before["b.log"]) == 4096  # what the kill -9 left
    # A record cut by the kill is ignored: append half of a copy of the first record.
    data = log.read_bytes()
    with open(log, "ab") as f:
        f.write(data[: powerloss.HEADER.size + 5])
    plug = powerloss.pull_plug(str(log), str(d))
    assert plug.cut_bytes == powerloss.HEADER.size + 5
    got = {p.name: p.read_bytes() for p in d.iterdir()}
    want = {
        "a.log": b"A" * 5000,
        "b.log": b"",
        "c.log": b"D" * 8192,
        "e.log": b"E" * 1000,
        "g.log": b"G" * 10,
        "h.log": b"H" * 10 + b"I" * 5 + b"J" * 5,
        "n.log": b"",
        "r.log": b"R" * 300,
        "x.sqlite-shm": b"Z" * 100,
        "LOCK": b"Z" * 100,
    }
    assert got == want, {k: (len(v), v[:24]) for k, v in got.items() if want.get(k) != v}
    assert (outside / "o.log").read_bytes() == b"O" * 100
    # The sync of a.log started and ended between the child's two clock readings: one clock.
    a_syncs = [s for s in plug.syncs if s.path.endswith("/a.log")]
    assert len(a_syncs) == 1 and t0 <= a_syncs[0].start_ns <= a_syncs[0].end_ns <= t1, (t0, t1, a_syncs)
    assert plug.gone >= 0 and not plug.mmap_writes


# -- mnemod under load, unplugged ---------------------------------------------------------------

def _journal(p: str) -> bool:
    b = os.path.basename(p)
    return "/working/" in p and b.startswith("journal-") and b.endswith(".log")


FILE_RULE = {  # the file that holds an acknowledged write until it is synced
    "wm": _journal, "ttl": _journal, "claim": _journal,
    "ep": lambda p: p.endswith("/episodic.sqlite-wal"),
    "sem": lambda p: p.endswith("/semantic.sqlite-wal"),
}
BROAD_RULE = {  # the brief's wording: any file of the tier
    "wm": lambda p: "/working/" in p, "ttl": lambda p: "/working/" in p, "claim": lambda p: "/working/" in p,
    "ep": lambda p: "/episodic.sqlite" in p,
    "sem": lambda p: "/semantic.sqlite" in p,
}


class PowerLossPolicy(LossPolicy):
    """normal: a write had to survive if a completed sync of its file began after its reply."""

    name = "synced after the reply"
    check_searches = False

    def __init__(self, plugs: List[powerloss.Plug], rule=FILE_RULE) -> None:
        self.last = {tier: max(p.last_sync_start(match) for p in plugs) for tier, match in rule.items()}

    def covered(self, tier: str, acked_ns: int) -> bool:
        return acked_ns < self.last[tier]


@pytest.mark.parametrize("mode", ["strict", "normal"])
def test_powerloss_under_mixed_load(mode, shim, shim_daemons, rng, report):
    d = shim_daemons(f"pl-{mode}", config_for(mode), shim)
    led = Ledger()
    highest_rev = 0
    highest_token = 0
    problems: List[str] = []
    lost = 0
    lost_allowed = 0
    lost_broad = 0
    allowed_by_tier: Dict[str, int] = defaultdict(int)
    oldest_age_s: Dict[str, float] = {}
    refusals: List[str] = []
    degraded: List[str] = []
    check_codes: Counter = Counter()
    check_flagged: List[str] = []
    kill_after: List[float] = []
    startup_kills: List[float] = []
    undone = 0
    syncs = 0
    searches_checked = 0
    mmap_writes: List[str] = []
    started = time.monotonic()

    health = powerloss.start_any(d)
    assert health["status"] == "ok", health
    rnd = -1
    for rnd in range(ROUNDS):
        searches_before = len(led.searches)
        stop, threads = start_load(d.sock, mode, rnd, led, rng)
        delay = rng.uniform(0.0, 0.3) if rng.random() < 0.2 else rng.uniform(0.3, ROUND_SECONDS)
        time.sleep(delay)
        kill_ns = time.monotonic_ns()
        d.kill9()
        kill_after.append(round(delay, 2))
        stop_load(stop, threads, rnd)
        plugs = [powerloss.pull_plug(d.undo_log, d.data_dir)]
        mmap_writes += plugs[-1].mmap_writes

        if rng.random() < 0.25:
            # The next start-up (recovery, its snapshot, opening the databases) unplugged too.
            d.spawn()
            t = rng.uniform(0.0, 0.5)
            time.sleep(t)
            d.kill9()
            startup_kills.append(round(t, 2))
            plugs.append(powerloss.pull_plug(d.undo_log, d.data_dir))
        undone += sum(p.undone for p in plugs)
        syncs += sum(len(p.syncs) for p in plugs)

        code, out = powerloss.mnemo_check(d.data_dir)
        check_codes[code] += 1
        if code not in (0, 4):
            check_flagged.append(f"round {rnd}: mnemo check exit {code}:\n{out[-1500:]}")
        for name, res in integrity_check_copies(d.data_dir, os.path.join(d.workdir, "ic")).items():
            if res != "ok":
                problems.append(f"round {rnd}: {name} fails integrity_check after the power loss: {res}")

        evidence = os.path.join(d.workdir, f"after-plug-{rnd}")
        shutil.copytree(d.data_dir, evidence)  # the unplugged files, in case the start goes wrong
        try:
            health = powerloss.start_any(d)
        except powerloss.Refused as e:
            refusals.append(f"round {rnd}: exit {e.code}: {e.log_tail[-1500:]}")
            problems.append(f"round {rnd}: mnemod refused to start after a simulated power loss "
                            f"(exit {e.code}); the files are kept in {evidence}")
            break
        if health.get("status") != "ok":
            degraded.append(f"round {rnd}: {health}")
            problems.append(f"round {rnd}: mnemod starts degraded after a simulated power loss: {health}; "
                            f"the files are kept in {evidence}")
            break
        shutil.rmtree(evidence, ignore_errors=True)

        policy = MUST_KEEP_ALL if mode == "strict" else PowerLossPolicy(plugs)
        with d.client("checker") as c:
            older = led.searches[:searches_before]
            round_searches = led.searches[searches_before:] + rng.sample(older, min(10, len(older)))
            res = check_after_restart(c, mode, led, round_searches, policy)
            if policy.check_searches:
                searches_checked += len(round_searches)
            lost += res.lost
            lost_allowed += res.lost_allowed
            for tier, n in res.allowed_by_tier.items():
                allowed_by_tier[tier] += n
            for tier, t in res.oldest_allowed_ns.items():
                oldest_age_s[tier] = max(oldest_age_s.get(tier, 0.0), round((kill_ns - t) / 1e9, 2))
            if mode == "normal":
                broad = PowerLossPolicy(plugs, BROAD_RULE)
                lost_broad += sum(1 for tier, t in res.allowed if broad.covered(tier, t))
            problems.extend(f"round {rnd}: {p}" for p in res.problems)
            more, highest_rev, highest_token = check_revisions(c, mode, rnd, led, highest_rev, highest_token)
            problems.extend(more)
        print(f"[hardening] powerloss {mode} round {rnd}: kill after {delay:.2f}s, "
              f"{' | '.join(p.summary() for p in plugs)}; check exit {code}; lost={res.lost} "
              f"allowed={dict(res.allowed_by_tier)}", flush=True)
        if not problems:  # the undo logs are large: kept only as the evidence of a failed round
            for f in os.listdir(d.undo_dir):
                os.unlink(os.path.join(d.undo_dir, f))
        if problems and not SETTINGS.long:
            break
    d.stop()
    crash_points = rnd + 1 + len(startup_kills)
    line = (f"powerloss {mode}: crash_points={crash_points} acked_checked={led.acked_writes} lost={lost} "
            f"lost_allowed_normal={lost_allowed} refusals={len(refusals)} degraded={len(degraded)}")
    extra = (f"lost_allowed_by_tier={dict(allowed_by_tier)} oldest_lost_age_s={oldest_age_s} "
             f"lost_broad_rule={lost_broad} check_exit_codes={dict(check_codes)} startup_kills={len(startup_kills)} "
             f"undone_changes={undone} syncs={syncs} searches_compared={searches_checked} "
             f"seconds={time.monotonic() - started:.1f}")
    print(f"\n[hardening] {line} {extra}", flush=True)
    for text in check_flagged:
        print(f"[hardening] powerloss {mode}: {text}", flush=True)
    report.record(f"powerloss[{mode}]", runs=rnd + 1, operations=led.operations, faults=crash_points,
                  acknowledged_writes=led.acked_writes, data_lost=lost, crash_points=crash_points,
                  lost_allowed_normal=lost_allowed, lost_allowed_by_tier=dict(allowed_by_tier),
                  oldest_lost_age_s=oldest_age_s, lost_broad_rule=lost_broad, refusals=len(refusals),
                  degraded=len(degraded), check_exit_codes=dict(check_codes), startup_kills_after_s=startup_kills,
                  kill_after_s=kill_after, undone_changes=undone, syncs=syncs, searches_compared=searches_checked)
    assert not mmap_writes, f"shared writable mappings of tracked files (the simulation misses them): {mmap_writes}"
    assert not led.errors, "errors under load:\n" + "\n".join(led.errors[:20])
    assert not refusals, "mnemod refused to start after a simulated power loss:\n" + "\n".join(refusals)
    assert not degraded, "mnemod started degraded after a simulated power loss:\n" + "\n".join(degraded)
    assert lost == 0 and not problems, f"{lost} acknowledged writes that had to survive were lost:\n" + "\n".join(problems[:40])
    assert led.acked_writes > 0
    if mode == "strict":
        assert lost_allowed == 0
        assert searches_checked > 0, "no search was taken before a kill"
