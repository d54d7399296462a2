"""Fault injection against real daemons: a full disk (every tier), slow and idle clients,
the connection limit, and the working-memory budget.

- disk full: the data directory is a small tmpfs (skipped, with the reason, only when this
  process may not mount one). A filler file takes every free byte; then each tier's writes
  must fail with UNAVAILABLE (never another error, never a crash), a refused write must not
  be applied, every acknowledged one must be readable, reads go on; once the filler is
  removed writes to every tier resume; after a kill -9 the acknowledged writes are all
  there and every .sqlite file passes integrity_check.
- slow clients: with `[limits] idle_timeout_ms`, a request line still unfinished that long
  after its FIRST byte gets an error line and the connection is closed, even when the peer
  keeps sending a byte every half second or every second (README, Limits); with
  `idle_connection_timeout_ms`, a connection that sends nothing and waits for nothing is
  cut the same way, while a connection holding a watch is kept; meanwhile another client's
  latency stays normal.
- connection limit: a peer over `max_connections` gets exactly one error line
  (LIMIT_EXCEEDED, limit max_connections) and EOF; the connected ones keep working; freed
  slots are usable again; no descriptor leaks.
- working-memory budget: over `max_working_bytes` writes get LIMIT_EXCEEDED, reads go on,
  nothing is evicted, claims never (they stay, renewable), other tiers are unaffected,
  deleting keys makes room.
"""
from __future__ import annotations

import errno
import json
import os
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

import pytest

from harness import (Daemon, Raw, can_mount_tmpfs, hello, integrity_check_copies, new_workdir, open_connections, percentile,
                     wait_until)
from mnemo_client import Client, LimitExceeded, MnemoError, Unavailable


# -- disk full ----------------------------------------------------------------------------------------

def fill_disk(path: str) -> int:
    """Writes zeros to ``path`` until the file system is full; returns the bytes written."""
    written = 0
    chunk = b"\0" * 65536
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        while True:
            try:
                n = os.write(fd, chunk)
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
                break
            written += n
        for size in (4096, 512, 1):   # the last crumbs
            while True:
                try:
                    written += os.write(fd, b"\0" * size)
                except OSError:
                    break
    finally:
        os.close(fd)
    return written


class TierWriter:
    """Writes unique items to one tier; records acknowledged and refused ones."""

    def __init__(self, c: Client, tier: str) -> None:
        self.c = c
        self.tier = tier
        self.n = 0
        self.acked: List[Tuple[str, str]] = []     # (id or key, content)
        self.refused: List[Tuple[str, str]] = []
        self.other_errors: List[str] = []

    def write(self, size: int) -> Optional[MnemoError]:
        self.n += 1
        tag = f"{self.tier}-{self.n}-{time.time_ns()}"
        body = ("word%d " % self.n) * (size // 8)
        try:
            if self.tier == "wm":
                self.c.set("full/wm", tag, {"t": tag, "b": body})
                ident = tag
            elif self.tier == "ep":
                ident = self.c.call("ep.append", ns="full/ep", kind="step", content=f"{tag} {body}")["id"]
            else:
                ident = self.c.call("sem.upsert", ns="full/sem", id=tag, text=f"{tag} {body}")["id"]
        except Unavailable as e:
            self.refused.append((tag, tag))
            return e
        except MnemoError as e:
            self.other_errors.append(f"{self.tier} write {self.n}: {e!r}")
            return e
        self.acked.append((ident, tag))
        return None


def tier_contents(c: Client) -> Dict[str, set]:
    """Tags present in each tier."""
    out: Dict[str, set] = {"wm": set(), "ep": set(), "sem": set()}
    cursor = None
    while True:
        params: Dict[str, Any] = {"ns": "full/wm", "limit": 1000}
        if cursor:
            params["cursor"] = cursor
        page = c.call("wm.list", params)
        out["wm"].update(i["key"] for i in page["items"])
        cursor = page.get("cursor")
        if not cursor:
            break
    cursor = None
    while True:
        params = {"ns": "full/ep", "limit": 1000}
        if cursor:
            params["cursor"] = cursor
        page = c.call("ep.query", params)
        out["ep"].update(r["content"].split(" ", 1)[0] for r in page["records"])
        cursor = page.get("cursor")
        if not cursor or not page["records"]:
            break
    hits = c.call("sem.search", ns="full/sem", text="word1 word2", k=1000)["hits"]
    out["sem"].update(h["id"] for h in hits)
    return out


@pytest.mark.parametrize("mode", ["normal", "strict"])
def test_disk_full_every_tier_refuses_cleanly_and_recovers(mode, daemons, mounts, report):
    reason = can_mount_tmpfs()
    if reason:
        pytest.skip(reason)
    workdir = new_workdir(f"full-{mode}")
    data = os.path.join(workdir, "data")
    os.makedirs(data)
    r = os.system(f"mount -t tmpfs -o size=12m tmpfs {data}")
    assert r == 0, "mount failed after the probe succeeded"
    mounts.append(data)
    # Snapshots every MiB of journal: they are attempted (and must fail harmlessly) while full.
    d: Daemon = daemons(f"full-{mode}", config=f'durability = "{mode}"\n[working]\nsnapshot_bytes = 1048576\n',
                        data_dir=data, workdir=workdir)
    c = d.client("filler", timeout=60)
    writers = {t: TierWriter(c, t) for t in ("wm", "ep", "sem")}
    for t, w in writers.items():      # some data first, written while there is room
        for _ in range(20):
            assert w.write(2000) is None, f"{t}: {w.other_errors or w.refused}"
    # Journal until a snapshot was taken, then up to just under snapshot_bytes more: the next
    # snapshot falls due while the disk is full.
    working = os.path.join(data, "working")
    for _ in range(2000):
        if any(f.startswith("snapshot-") and f.endswith(".mnemo") for f in os.listdir(working)):
            break
        assert writers["wm"].write(4000) is None
    time.sleep(0.3)
    a0 = c.stats()["durability"]["appended_bytes"]
    while c.stats()["durability"]["appended_bytes"] - a0 < 1048576 - 60000:
        assert writers["wm"].write(4000) is None
    filler = os.path.join(data, "filler")
    filled = fill_disk(filler)
    # Every tier: write until refused, then a few more attempts (each refused or acked).
    first_refusal: Dict[str, int] = {}
    for t, w in writers.items():
        for i in range(3000):
            e = w.write(4000)
            if e is not None and isinstance(e, Unavailable):
                first_refusal[t] = i
                break
            if e is not None:
                break
            assert d.alive(), f"mnemod died while {t} filled the disk:\n{d.log_tail()}"
        for _ in range(10):
            w.write(4000)
    assert d.alive(), f"mnemod exited on a full disk:\n{d.log_tail()}"
    other = [e for w in writers.values() for e in w.other_errors]
    # Reads keep working while the disk is full.
    reads_ok = 0
    c.health()
    for t, w in writers.items():
        for ident, tag in w.acked[-5:]:
            if t == "wm":
                assert c.get("full/wm", ident)["found"], ident
            elif t == "ep":
                assert c.call("ep.search", ns="full/ep", text=tag.replace("-", " ").split()[1] + " word1")["hits"] is not None
            else:
                assert c.call("sem.get", ns="full/sem", id=ident)["found"], ident
            reads_ok += 1
    during = tier_contents(c)
    # Space returns: every tier writes again.
    os.unlink(filler)
    resumed: Dict[str, bool] = {}
    for t, w in writers.items():
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if w.write(2000) is None:
                resumed[t] = True
                break
            time.sleep(0.1)
    # Everything acknowledged is there after a kill -9; nothing refused is.
    d.kill9()
    integrity = integrity_check_copies(data, os.path.join(workdir, "ic"))
    d.start()
    with d.client("checker") as c2:
        after = tier_contents(c2)
    c.close()
    lost = []
    phantom = []
    for t, w in writers.items():
        key = (lambda ident, tag: ident) if t in ("wm", "sem") else (lambda ident, tag: tag)
        for ident, tag in w.acked:
            if key(ident, tag) not in after[t]:
                lost.append(f"{t} {ident}")
        for ident, tag in w.refused:
            if tag in during[t] or tag in after[t]:
                phantom.append(f"{t} {tag} was refused with UNAVAILABLE but is stored")
    acked = sum(len(w.acked) for w in writers.values())
    refused = sum(len(w.refused) for w in writers.values())
    report.record(f"disk_full[{mode}]", runs=1, operations=sum(w.n for w in writers.values()), faults=refused,
                  acknowledged_writes=acked, data_lost=len(lost), filler_bytes=filled,
                  refused_per_tier={t: len(w.refused) for t, w in writers.items()},
                  first_refusal_after=first_refusal, reads_while_full=reads_ok, resumed=sorted(resumed),
                  snapshot_failures_logged=d.log_text().count("snapshot failed"))
    assert not other, "errors other than UNAVAILABLE on a full disk:\n" + "\n".join(other[:10])
    assert set(first_refusal) == {"wm", "ep", "sem"}, f"never refused: {set(writers) - set(first_refusal)}"
    assert not phantom, "\n".join(phantom[:10])
    assert set(resumed) == {"wm", "ep", "sem"}, f"writes did not resume after freeing space: {resumed}"
    assert all(v == "ok" for v in integrity.values()), integrity
    assert not lost, f"{len(lost)} acknowledged writes lost: {lost[:10]}"


# -- slow and idle clients --------------------------------------------------------------------------

LINE_TIMEOUT_MS = 2000
IDLE_TIMEOUT_MS = 3000


def trickle(path: str, interval: float, out: Dict[str, Any], key: str, stop: threading.Event) -> None:
    """Says hello, then sends a request one byte per ``interval`` seconds until cut off."""
    raw = Raw(path, timeout=10)
    try:
        hello(raw, f"slow-{key}")
        line = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "wm.set",
                           "params": {"ns": "slow", "key": key, "value": "x" * 400}}).encode() + b"\n"
        first = time.monotonic()
        sent = 0
        cut = None
        reply = None
        while sent < len(line) and not stop.is_set():
            try:
                raw.send(line[sent:sent + 1])
            except OSError:
                # Cut off between two bytes: the error line may still wait unread.
                cut = time.monotonic()
                try:
                    reply = raw.read_line(timeout=1.0)
                except (TimeoutError, OSError):
                    reply = None
                break
            sent += 1
            try:
                reply = raw.read_line(timeout=interval)
            except TimeoutError:
                continue
            cut = time.monotonic()
            out[key] = {"after_s": cut - first, "reply": reply, "bytes_sent": sent,
                        "closed": raw.wait_closed(2.0)}
            return
        out[key] = {"after_s": (cut or time.monotonic()) - first, "reply": reply, "bytes_sent": sent,
                    "closed": cut is not None}
    finally:
        raw.close()


def stall(path: str, out: Dict[str, Any], key: str, partial: bool, say_hello: bool) -> None:
    """Sends half a line (or nothing) and waits to be cut off."""
    raw = Raw(path, timeout=10)
    try:
        if say_hello:
            hello(raw, f"stall-{key}")
        t0 = time.monotonic()
        if partial:
            raw.send(b'{"jsonrpc":"2.0","id":1,"method":"wm.get","par')
        try:
            reply = raw.read_line(timeout=max(LINE_TIMEOUT_MS, IDLE_TIMEOUT_MS) / 1000 + 6)
        except TimeoutError:
            reply = b"<timeout>"
        out[key] = {"after_s": time.monotonic() - t0, "reply": reply, "closed": raw.wait_closed(2.0)}
    finally:
        raw.close()


def error_limit(reply: Optional[bytes]) -> Optional[str]:
    if not reply or reply == b"<timeout>":
        return None
    try:
        msg = json.loads(reply)
    except ValueError:
        return None
    return ((msg.get("error") or {}).get("data") or {}).get("limit")


def check_cut(out: Dict[str, Any], keys: List[str], want: str, budget_s: float) -> List[str]:
    problems = []
    for key in keys:
        r = out.get(key)
        if r is None:
            problems.append(f"{key}: never finished")
            continue
        limit = error_limit(r["reply"])
        if limit != want or not r["closed"]:
            problems.append(f"{key}: expected an error line naming {want} then EOF; got {r['reply']!r:.200} "
                            f"closed={r['closed']} after {r['after_s']:.1f} s"
                            + (f", {r['bytes_sent']} bytes sent one by one" if "bytes_sent" in r else ""))
        elif r["after_s"] > budget_s + 1.5:
            problems.append(f"{key}: cut off after {r['after_s']:.1f} s, limit {budget_s} s")
    return problems


def probe_latency(c: Client, threads: List[threading.Thread], deadline: float) -> Tuple[List[float], List[str]]:
    lat: List[float] = []
    errors: List[str] = []
    while any(t.is_alive() for t in threads) and time.monotonic() < deadline:
        t0 = time.perf_counter()
        try:
            c.get("slow", "probe")
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))
            break
        lat.append(time.perf_counter() - t0)
        time.sleep(0.005)
    return lat, errors


def baseline_latency(c: Client) -> List[float]:
    c.set("slow", "probe", 1)
    out = []
    for _ in range(300):
        t0 = time.perf_counter()
        c.get("slow", "probe")
        out.append(time.perf_counter() - t0)
    return out


def test_slow_senders_are_cut_off_from_a_lines_first_byte(daemons, report):
    """A request line unfinished idle_timeout_ms after its first byte: error line, close --
    also when the peer sends one byte every 0.5 s or every 1 s (fails on binaries that
    restart the deadline at every byte)."""
    d: Daemon = daemons("slow", config=f"[limits]\nidle_timeout_ms = {LINE_TIMEOUT_MS}\n")
    fast = d.client("fast", timeout=10)
    baseline = baseline_latency(fast)
    stop = threading.Event()
    out: Dict[str, Any] = {}
    threads = []
    keys = []
    for i in range(6):
        keys.append(f"half-{i}")
        threads.append(threading.Thread(target=trickle, args=(d.sock, 0.5, out, keys[-1], stop)))
    for i in range(2):
        keys.append(f"one-{i}")
        threads.append(threading.Thread(target=trickle, args=(d.sock, 1.0, out, keys[-1], stop)))
    for i in range(4):
        keys.append(f"partial-{i}")
        threads.append(threading.Thread(target=stall, args=(d.sock, out, keys[-1], True, i % 2 == 0)))
    for t in threads:
        t.daemon = True
        t.start()
    during, active_errors = probe_latency(fast, threads, time.monotonic() + LINE_TIMEOUT_MS / 1000 + 8)
    stop.set()
    for t in threads:
        t.join(timeout=15)
    base_p99 = percentile(baseline, 99)
    during_p99 = percentile(during, 99)
    wait_until(lambda: fast.stats()["connections"]["current"] <= 1)
    conns = fast.stats()["connections"]
    fast.close()
    problems = check_cut(out, keys, "idle_timeout_ms", LINE_TIMEOUT_MS / 1000)
    report.record("slow_senders", runs=1, operations=len(baseline) + len(during), faults=len(threads),
                  acknowledged_writes=0, data_lost=0, cut_off=sum(1 for r in out.values() if r["closed"]),
                  baseline_p99_ms=round(base_p99 * 1000, 2), during_p99_ms=round(during_p99 * 1000, 2),
                  max_cut_s=round(max((r["after_s"] for r in out.values()), default=0), 2))
    assert not active_errors, active_errors
    assert not problems, "\n".join(problems)
    # The other client's latency is reported (baseline_p99_ms, during_p99_ms), not bounded: a
    # wall-clock bound flakes on a shared machine; that it was served throughout is asserted.
    assert during, "the other client was not served while the faults ran"
    assert conns["current"] <= 1, f"connections still open after the cut-offs: {conns}"


def test_idle_connections_are_cut_off_but_waiting_ones_are_kept(daemons, report):
    """idle_connection_timeout_ms: silent connections get an error line and are closed; a
    connection holding a watch, one with a parked claim.acquire, and an active one stay."""
    d: Daemon = daemons("idle", config=(f"[limits]\nidle_timeout_ms = {LINE_TIMEOUT_MS}\n"
                                        f"idle_connection_timeout_ms = {IDLE_TIMEOUT_MS}\n"))
    fast = d.client("fast", timeout=10)
    baseline = baseline_latency(fast)
    watcher = Client(d.sock, agent="watcher", timeout=10)
    watch = watcher.watch("slow/watched")
    holder = d.client("holder", timeout=10)
    token = holder.acquire("slow", "busy", 600_000)["token"]
    parked_result: Dict[str, Any] = {}

    def parked() -> None:
        with Client(d.sock, agent="parked", timeout=30) as p:
            t0 = time.monotonic()
            try:
                parked_result["token"] = p.acquire("slow", "busy", 10_000, wait_ms=IDLE_TIMEOUT_MS * 3)["token"]
            except Exception as e:  # noqa: BLE001
                parked_result["error"] = repr(e)
            parked_result["after_s"] = time.monotonic() - t0

    out: Dict[str, Any] = {}
    threads = [threading.Thread(target=parked)]
    keys = []
    for i in range(4):
        keys.append(f"idle-{i}")
        threads.append(threading.Thread(target=stall, args=(d.sock, out, keys[-1], False, i % 2 == 0)))
    for t in threads:
        t.daemon = True
        t.start()
    # Release the claim only after the idle timeout: the parked caller must still be there.
    release_at = time.monotonic() + IDLE_TIMEOUT_MS / 1000 * 1.8
    during: List[float] = []
    active_errors: List[str] = []
    while time.monotonic() < release_at:
        lat, errs = probe_latency(fast, threads[1:], time.monotonic() + 0.5)
        during += lat
        active_errors += errs
        time.sleep(0.05)
    holder.release("slow", "busy", token)
    holder.close()
    for t in threads:
        t.join(timeout=15)
    fast.set("slow/watched", "k", 1)
    try:
        event = watch.next(timeout=5)
    except Exception as e:  # noqa: BLE001
        event = {"error": repr(e)}
    watch.cancel()
    watcher.close()
    base_p99 = percentile(baseline, 99)
    during_p99 = percentile(during, 99)
    fast.close()
    problems = check_cut(out, keys, "idle_connection_timeout_ms", IDLE_TIMEOUT_MS / 1000)
    report.record("idle_connections", runs=1, operations=len(baseline) + len(during), faults=len(keys),
                  acknowledged_writes=0, data_lost=0, cut_off=sum(1 for r in out.values() if r["closed"]),
                  baseline_p99_ms=round(base_p99 * 1000, 2), during_p99_ms=round(during_p99 * 1000, 2),
                  parked_waited_s=round(parked_result.get("after_s", -1), 2))
    assert not active_errors, f"an active client was cut off: {active_errors}"
    assert not problems, "\n".join(problems)
    assert "token" in parked_result and parked_result["token"] > token, \
        f"a parked claim.acquire was cut off or failed: {parked_result}"
    assert "error" not in event and event.get("key") == "k", f"the watcher was cut off or got nothing: {event}"
    # The other client's latency is reported (baseline_p99_ms, during_p99_ms), not bounded: a
    # wall-clock bound flakes on a shared machine; that it was served throughout is asserted.
    assert during, "the other client was not served while the faults ran"


# -- connection limit ---------------------------------------------------------------------------------

def test_connection_limit_refuses_cleanly_and_others_keep_working(daemons, report):
    limit = 16
    d: Daemon = daemons("connlimit", config=f"[limits]\nmax_connections = {limit}\n")
    conns: List[Raw] = []
    for i in range(limit):
        raw = Raw(d.sock)
        hello(raw, f"c{i}")
        conns.append(raw)
        if i == 0:  # the start-up probe's connection is closed: the base has one client
            assert wait_until(lambda: open_connections(raw) == 1)
            fd_base = d.fd_count()
    refusals = []
    attempts = 40
    for i in range(attempts):
        raw = Raw(d.sock, timeout=5)
        try:
            line = raw.read_line(timeout=3)
            closed = raw.wait_closed(3)
            extra = bytes(raw.buf)
        except TimeoutError:
            line, closed, extra = b"<no line in 3 s>", False, b""
        finally:
            raw.close()
        refusals.append((line, closed, extra))
    # The connected ones keep working.
    worked = 0
    for i, raw in enumerate(conns):
        raw.request(i + 1, "wm.set", {"ns": "conn", "key": f"k{i}", "value": i})
        rep = raw.read_json(5)
        raw.request(i + 1000, "wm.get", {"ns": "conn", "key": f"k{i}"})
        got = raw.read_json(5)
        if rep and "result" in rep and got and got.get("result", {}).get("value") == i:
            worked += 1
    conns[0].request(99, "admin.stats")
    stats = conns[0].read_json(5)["result"]["connections"]
    # Freed slots can be used again.
    for raw in conns[:4]:
        raw.close()
    assert wait_until(lambda: open_connections(conns[4]) == limit - 4)
    reused = 0
    for i in range(4):
        try:
            with Client(d.sock, agent=f"again{i}", timeout=5) as c:
                c.get("conn", "k1")
                reused += 1
        except MnemoError:
            pass
    for raw in conns[4:]:
        raw.close()
    wait_until(lambda: d.fd_count() < fd_base)  # every client gone (the base counted one)
    fd_end = d.fd_count()
    with d.client("after") as c:
        healthy = c.health()["status"] == "ok"
    bad = []
    for line, closed, extra in refusals:
        try:
            msg = json.loads(line)
        except ValueError:
            bad.append(f"not JSON: {line!r:.200}")
            continue
        err = msg.get("error") or {}
        if err.get("data", {}).get("limit") != "max_connections" or err.get("data", {}).get("code") != "LIMIT_EXCEEDED" \
                or msg.get("id", "missing") is not None:
            bad.append(f"unexpected refusal {msg!r:.300}")
        if not closed or extra:
            bad.append(f"not closed right after one line (closed={closed}, more={extra!r:.100})")
    report.record("connection_limit", runs=1, operations=attempts + 2 * limit + 4, faults=attempts,
                  acknowledged_writes=worked, data_lost=limit - worked, refused=stats.get("refused"),
                  fds_before=fd_base, fds_after=fd_end)
    assert not bad, "\n".join(bad[:10])
    assert worked == limit, f"only {worked} of {limit} connected clients kept working"
    assert stats["refused"] >= attempts, stats
    assert reused == 4, f"freed slots not reusable: {reused} of 4"
    assert healthy
    assert fd_end <= fd_base + 2, f"descriptors leaked: {fd_base} -> {fd_end}"


def test_out_of_file_descriptors_refuses_cleanly_and_every_tier_keeps_working(daemons, report):
    """RLIMIT_NOFILE below max_connections: peers past the descriptors get the same one
    error line and EOF (README, Limits: max_connections); the connected clients, and every
    tier's reads and writes (SQLite opens files lazily), keep working; descriptors return."""
    d: Daemon = daemons("nofile", nofile=64)
    c = d.client("main")
    c.set("fd", "k", 0)
    fd_base = d.fd_count()
    conns: List[Raw] = []
    refusals: List[Any] = []
    for i in range(90):
        raw = Raw(d.sock)
        try:
            try:
                raw.request(0, "session.hello", {"agent": f"c{i}"})
            except OSError:
                pass   # refused and closed before our hello arrived: its error line is still there
            msg = raw.read_json(3)
        except (TimeoutError, OSError, ValueError) as e:
            msg = repr(e)
        if isinstance(msg, dict) and "result" in msg:
            conns.append(raw)
        else:
            refusals.append((msg, raw.wait_closed(3) if isinstance(msg, dict) else False))
            raw.close()
    at_limit = d.fd_count()
    # Every tier, read and write, first use of the SQLite read pools included.
    results: Dict[str, Any] = {}
    for name, fn in {
        "wm.set": lambda: c.set("fd", "k", 1)["rev"],
        "ep.append": lambda: c.call("ep.append", ns="fd", kind="k", content="while out of descriptors")["id"],
        "ep.query": lambda: len(c.call("ep.query", ns="fd")["records"]),
        "ep.search": lambda: len(c.call("ep.search", ns="fd", text="descriptors")["hits"]),
        "sem.upsert": lambda: c.call("sem.upsert", ns="fd", id="f1", text="out of descriptors")["id"],
        "sem.search": lambda: c.call("sem.search", ns="fd", text="descriptors", k=3)["hits"][0]["id"],
        "claim.acquire": lambda: c.acquire("fd", "r", 10000)["token"],
    }.items():
        try:
            results[name] = fn()
        except Exception as e:  # noqa: BLE001
            results[name] = f"ERROR {e!r}"
    connected_ok = 0
    for i, raw in enumerate(conns):
        raw.request(i + 1, "wm.get", {"ns": "fd", "key": "k"})
        m = raw.read_json(5)
        connected_ok += bool(m and m.get("result", {}).get("value") == 1)
    for raw in conns:
        raw.close()
    assert wait_until(lambda: c.stats()["connections"]["current"] == 1)  # only `c` is left
    fd_end = d.fd_count()
    with Client(d.sock, agent="after", timeout=5) as c2:
        after_ok = c2.get("fd", "k")["value"] == 1
    c.close()
    bad = [f"{m!r:.200} closed={closed}" for m, closed in refusals
           if not (isinstance(m, dict) and ((m.get("error") or {}).get("data") or {}).get("limit") == "max_connections"
                   and closed)]
    errors = {k: v for k, v in results.items() if isinstance(v, str) and v.startswith("ERROR")}
    report.record("out_of_fds", runs=1, operations=90 + len(results) + len(conns), faults=len(refusals),
                  acknowledged_writes=3, data_lost=0 if after_ok else 1, connected=len(conns),
                  fds_before=fd_base, fds_at_limit=at_limit, fds_after=fd_end)
    assert refusals, "the descriptor limit was never reached"
    assert not bad, "refusals that were not one error line then EOF:\n" + "\n".join(bad[:5])
    assert not errors, f"tiers failing while out of descriptors: {errors}"
    assert results["ep.query"] == 1 and results["ep.search"] == 1 and results["sem.search"] == "f1", results
    assert connected_ok == len(conns), f"{len(conns) - connected_ok} connected clients stopped working"
    assert after_ok and d.alive()
    assert fd_end <= fd_base + 2, f"descriptors leaked: {fd_base} -> {fd_end}"


# -- working-memory budget -------------------------------------------------------------------------------

def test_working_memory_cap_refuses_writes_keeps_reads_and_never_evicts(daemons, report):
    d: Daemon = daemons("wmcap", config="[limits]\nmax_working_bytes = 1048576\n[working]\nsweep_interval_ms = 20\n")
    c = d.client("capper", timeout=30)
    claims = {}
    for i in range(20):
        claims[f"r{i}"] = c.acquire("cap", f"r{i}", 600_000)["token"]
    c.put_result("cap", "job", "idem-1", {"done": True})
    c.post("cap", "someone", "note", "hello")
    acked: Dict[str, Any] = {}
    refusal: Optional[LimitExceeded] = None
    other_errors = []
    for i in range(2000):
        value = {"i": i, "pad": "v" * 4000}
        try:
            c.set("cap", f"k{i}", value)
        except LimitExceeded as e:
            refusal = e
            refused_key = f"k{i}"
            break
        except MnemoError as e:
            other_errors.append(repr(e))
            break
        acked[f"k{i}"] = value
    assert refusal is not None, f"max_working_bytes never refused a write ({len(acked)} x 4 KB acked); {other_errors}"
    limit_name = refusal.data.get("limit")
    # More refusals of growth, of every kind of working-memory write.
    refused_more = {}
    for name, fn in {
        "wm.set": lambda: c.set("cap", "another", {"pad": "v" * 4000}),
        "wm.txn": lambda: c.txn([{"op": "set", "ns": "cap", "key": "txn", "value": "v" * 4000}]),
        "result.put": lambda: c.put_result("cap", "job2", "idem-2", {"pad": "v" * 4000}),
        "inbox.post": lambda: c.post("cap", "someone", "note", "v" * 4000),
    }.items():
        try:
            fn()
            refused_more[name] = "acknowledged"
        except LimitExceeded as e:
            refused_more[name] = e.data.get("limit")
        except MnemoError as e:
            refused_more[name] = repr(e)
    time.sleep(1.0)  # sweeps run every 20 ms: nothing may be evicted meanwhile
    # Reads go on; nothing evicted; claims kept and renewable.
    missing = [k for k, v in acked.items() if c.get("cap", k).get("value") != v]
    listed = {x["resource"]: x["token"] for x in c.claims("cap")["claims"]}
    claims_missing = [r for r, t in claims.items() if listed.get(r) != t]
    renew_errors = []
    for r, t in claims.items():
        try:
            c.renew("cap", r, t, 600_000)
        except MnemoError as e:
            renew_errors.append(f"{r}: {e!r}")
    released_ok = c.release("cap", "r0", claims["r0"]).get("released") is True
    reacquire = None
    try:
        reacquire = c.acquire("cap", "r0", 600_000)["token"]
    except MnemoError as e:
        reacquire = repr(e)
    replace_same_size = None
    try:
        c.set("cap", "k0", {"i": 0, "pad": "w" * 4000})
        acked["k0"] = {"i": 0, "pad": "w" * 4000}
        replace_same_size = "acknowledged"
    except MnemoError as e:
        replace_same_size = repr(e)
    ep_ok = "id" in c.call("ep.append", ns="cap", kind="note", content="episodic is another budget")
    # Deleting keys makes room.
    for k in list(acked)[-40:]:
        c.delete("cap", k)
        acked.pop(k)
    resumed = "acknowledged"
    try:
        c.set("cap", "after-delete", {"pad": "v" * 4000})
        acked["after-delete"] = {"pad": "v" * 4000}
    except MnemoError as e:
        resumed = repr(e)
    # And all of it survives a restart.
    d.kill9()
    d.start()
    with d.client("checker") as c2:
        lost_after = [k for k, v in acked.items() if c2.get("cap", k).get("value") != v]
        phantom = c2.get("cap", refused_key)["found"] or c2.get("cap", "another")["found"]
        listed2 = {x["resource"]: x["token"] for x in c2.claims("cap")["claims"]}
    c.close()
    report.record("working_memory_cap", runs=1, operations=len(acked) + 40 + 30, faults=1 + len(refused_more),
                  acknowledged_writes=len(acked) + len(claims), data_lost=len(missing) + len(claims_missing) + len(lost_after),
                  keys_before_full=len(acked), refused=refused_more)
    assert limit_name == "max_working_bytes", refusal.data
    assert not other_errors, other_errors
    assert all(v == "max_working_bytes" for v in refused_more.values()), refused_more
    assert not missing, f"keys evicted or changed at the cap: {missing[:10]}"
    assert not claims_missing, f"claims evicted at the cap: {claims_missing}"
    assert not renew_errors, f"renewing a held claim at the cap failed: {renew_errors[:5]}"
    assert released_ok
    assert isinstance(reacquire, int), f"re-acquiring a just-released claim at the cap: {reacquire}"
    assert replace_same_size == "acknowledged", f"replacing a value by one of the same size at the cap: {replace_same_size}"
    assert ep_ok
    assert resumed == "acknowledged", f"writes did not resume after deleting keys: {resumed}"
    assert not lost_after, f"lost after kill -9: {lost_after[:10]}"
    assert not phantom, "a refused write is stored after the restart"
    assert all(listed2.get(r) == t for r, t in claims.items() if r != "r0"), listed2


@pytest.mark.parametrize("mode", ["normal", "strict"])
def test_restart_on_a_full_disk_serves_reads_and_recovers_everything(mode, daemons, mounts, report):
    """mnemod killed while its disk is full, restarted while it is still full: it should
    come up and serve reads (writes UNAVAILABLE), as a running daemon does on a full disk;
    and once space returns every acknowledged write is there."""
    reason = can_mount_tmpfs()
    if reason:
        pytest.skip(reason)
    workdir = new_workdir("fullrestart")
    data = os.path.join(workdir, "data")
    os.makedirs(data)
    assert os.system(f"mount -t tmpfs -o size=12m tmpfs {data}") == 0
    mounts.append(data)
    d: Daemon = daemons("fullrestart", config=f'durability = "{mode}"\n', data_dir=data, workdir=workdir)
    c = d.client("filler", timeout=60)
    writers = {t: TierWriter(c, t) for t in ("wm", "ep", "sem")}
    for w in writers.values():
        for _ in range(20):
            assert w.write(2000) is None
    filler = os.path.join(data, "filler")
    fill_disk(filler)
    for w in writers.values():
        for _ in range(400):
            if w.write(4000) is not None:
                break
    c.close()
    d.kill9()
    # Restart with the disk still full.
    start_error = None
    reads: Dict[str, Any] = {}
    try:
        d.start(timeout=20)
        with d.client("reader") as r:
            reads["health"] = r.health()["status"]
            reads["contents"] = tier_contents(r)
            try:
                r.set("full/wm", "while-full", 1)
                reads["write"] = "acknowledged"
            except MnemoError as e:
                reads["write"] = e.name
    except RuntimeError as e:
        start_error = str(e).splitlines()[0] + " / " + d.log_tail(1)
    d.kill9()
    # Space returns: it must start, with everything acknowledged.
    os.unlink(filler)
    d.start()
    with d.client("checker") as c2:
        after = tier_contents(c2)
    lost = []
    for t, w in writers.items():
        for ident, tag in w.acked:
            if (ident if t in ("wm", "sem") else tag) not in after[t]:
                lost.append(f"{t} {ident}")
    acked = sum(len(w.acked) for w in writers.values())
    report.record(f"disk_full_restart[{mode}]", runs=2, operations=sum(w.n for w in writers.values()) + 2, faults=2,
                  acknowledged_writes=acked, data_lost=len(lost), started_while_full=start_error is None,
                  write_while_full=reads.get("write"))
    assert not lost, f"{len(lost)} acknowledged writes lost: {lost[:10]}"
    assert start_error is None, f"mnemod does not start on a full disk (reads impossible): {start_error}"
    assert reads["health"] == "ok"
    assert reads["write"] == "UNAVAILABLE", reads["write"]
    for t, w in writers.items():
        missing = [i for i, tag in w.acked if (i if t in ("wm", "sem") else tag) not in reads["contents"][t]]
        assert not missing, f"{t}: acknowledged writes not readable on the full disk: {missing[:5]}"
