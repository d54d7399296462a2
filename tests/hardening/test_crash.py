"""kill -9 at random moments under a mixed concurrent write load, repeated.

Client threads write to every tier (wm.set with compare-and-set, claim.acquire/release,
ep.append, sem.upsert with text embedded by the server) while a searcher takes sem.search
results; every write whose reply came back is recorded. At a random moment the daemon
gets SIGKILL; then, before the restart, every .sqlite file passes PRAGMA integrity_check
(on a copy); after the restart:

- an ep.append whose reply was lost is retried with its idempotency key after the
  restart and then exists exactly once;
- every acknowledged write is there (README, Durability: `normal` and `strict` both
  promise that acknowledged writes survive a kill -9 of mnemod); the only other value a
  key, claim or record may hold is the one of the single write that was in flight when the
  connection dropped (never a value nobody wrote, never an older one);
- the global revision and fencing tokens are never below any acknowledged one, and new
  ones are above every one seen before;
- sem.search results taken before the kill are reproduced bit for bit (README, Semantic
  memory, Persistence: "a restart returns bit-identical results"), restricted to what was
  visible to the search: the records of the collection up to some revision at least as
  high as every record acknowledged before the search was sent.

Keys with TTLs hold their value until their (wall-clock) expiry and stay expired after it.
The state accumulates over the rounds (one data directory per mode), so later rounds
also replay snapshots and journals written by earlier ones.
"""
from __future__ import annotations

import os
import random
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Set, Tuple

import pytest

from harness import Daemon, integrity_check_copies
from mnemo import Client, ConnectionLost, MnemoError

WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november "
         "oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu cat mat sat "
         "staging database reset nightly deploy rollback cache queue worker lease fence token").split()

SEM_ROUND_CAP = 400          # records per round collection: post-restart k=1000 covers them all
CLAIM_TTL_MS = 86_400_000    # claims must not expire during a (long) run
WM_WORKERS = 2
CLAIM_WORKERS = 1
EP_WORKERS = 1
SEM_WORKERS = 1


def config_for(mode: str) -> str:
    # Small snapshot threshold and a fast semantic maintainer, so that kills also land on
    # snapshot writes and collection compactions.
    return (f'durability = "{mode}"\nthreads = 2\n'
            "[working]\nsnapshot_bytes = 1048576\n"
            "[semantic]\nmaintenance_interval_ms = 300\n")


# -- the client-side ledger ----------------------------------------------------------------------

@dataclass
class KeyState:
    acked: Any = None          # last acknowledged value (None: never acknowledged)
    acked_version: int = 0
    inflight: Any = None       # a write sent after it whose reply never came


@dataclass
class ClaimState:
    held: Optional[int] = None         # acknowledged: held with this token, or free
    last_token: int = 0                # highest token ever granted for this resource
    inflight: Optional[Tuple[str, Optional[int]]] = None  # ("acquire", None) | ("release", token)


@dataclass
class SemState:
    acked: Optional[str] = None
    acked_rev: int = 0
    inflight: Optional[str] = None


@dataclass
class Search:
    ns: str
    text: str
    hits: List[Tuple[str, float, int]]   # (id, score, rev) in rank order
    floor_rev: int                        # every record acked before the search was sent


@dataclass
class TTLState:
    acked: Any = None
    expires_at: float = 0.0    # wall clock (s) the server gave for the acknowledged write
    inflight: Any = None


@dataclass
class Ledger:
    lock: threading.Lock = field(default_factory=threading.Lock)
    wm: Dict[str, KeyState] = field(default_factory=lambda: defaultdict(KeyState))
    claims: Dict[str, ClaimState] = field(default_factory=lambda: defaultdict(ClaimState))
    ttl: Dict[str, TTLState] = field(default_factory=lambda: defaultdict(TTLState))
    ep: Dict[str, Tuple[str, str]] = field(default_factory=dict)       # id -> (ns, content)
    ep_inflight: Set[str] = field(default_factory=set)                 # contents maybe stored
    ep_pending: Dict[str, Dict[str, Any]] = field(default_factory=dict)  # content -> params to retry
    ep_retried: int = 0
    sem: Dict[Tuple[str, str], SemState] = field(default_factory=lambda: defaultdict(SemState))
    searches: List[Search] = field(default_factory=list)
    max_rev: int = 0
    max_token: int = 0
    acked_writes: int = 0
    operations: int = 0
    errors: List[str] = field(default_factory=list)
    sem_count: Dict[str, int] = field(default_factory=lambda: defaultdict(int))
    sem_max_rev: Dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def saw_rev(self, rev: int) -> None:
        if rev > self.max_rev:
            self.max_rev = rev

    def error(self, text: str) -> None:
        with self.lock:
            self.errors.append(text)


DROPPED = (ConnectionLost, TimeoutError, OSError)


def connect_or_none(sock: str, agent: str, timeout: float) -> Optional[Client]:
    """A worker's client, or None when the daemon is down (killed under it): the worker ends."""
    try:
        return Client(sock, agent=agent, timeout=timeout)
    except DROPPED:
        return None


# -- workers -----------------------------------------------------------------------------------------

def wm_worker(sock: str, w: int, mode: str, stop: threading.Event, led: Ledger, rng: random.Random) -> None:
    ns = f"crash/{mode}/wm"
    keys = [f"w{w}-k{i}" for i in range(8)]
    c = connect_or_none(sock, f"wm-{w}", 15)
    if c is None:
        return
    with c:
        versions: Dict[str, Optional[int]] = {}
        try:
            for k in keys:
                r = c.get(ns, k)
                versions[k] = r["version"] if r.get("found") else None
        except DROPPED:
            return
        n = 0
        while not stop.is_set():
            k = rng.choice(keys)
            n += 1
            value = {"w": w, "n": f"{time.time_ns()}-{n}", "pad": "x" * rng.randrange(0, 300)}
            with led.lock:
                led.wm[k].inflight = value
                led.operations += 1
            try:
                if versions[k] is None:
                    r = c.set(ns, k, value, if_absent=True)
                else:
                    r = c.set(ns, k, value, if_version=versions[k])
            except DROPPED:
                return
            except MnemoError as e:  # nobody else writes these keys: CONFLICT is a bug
                led.error(f"wm.set {k} if_version={versions[k]}: {e!r}")
                return
            versions[k] = r["version"]
            with led.lock:
                st = led.wm[k]
                st.acked, st.acked_version, st.inflight = value, r["version"], None
                led.acked_writes += 1
                led.saw_rev(r["rev"])
            if n % 5 == 0:  # a read now and then
                try:
                    g = c.get(ns, k)
                except DROPPED:
                    return
                if g.get("value") != value:
                    led.error(f"wm.get {k} right after an acknowledged set: {g!r} != {value!r}")


def parse_time(text: str) -> float:
    from datetime import datetime
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def ttl_worker(sock: str, w: int, mode: str, stop: threading.Event, led: Ledger, rng: random.Random) -> None:
    """Keys with TTLs of 0.5-6 s: after the restart, unexpired ones hold their value and
    expired ones stay expired (TTLs are on the wall clock and survive restarts)."""
    ns = f"crash/{mode}/ttl"
    keys = [f"t{w}-{i}" for i in range(16)]
    c = connect_or_none(sock, f"ttl-{w}", 15)
    if c is None:
        return
    with c:
        while not stop.is_set():
            k = rng.choice(keys)
            value = f"{time.time_ns()}"
            with led.lock:
                led.ttl[k].inflight = value
                led.operations += 1
            try:
                r = c.set(ns, k, value, ttl_ms=rng.randrange(500, 6000))
            except DROPPED:
                return
            except MnemoError as e:
                led.error(f"wm.set ttl {k}: {e!r}")
                return
            with led.lock:
                st = led.ttl[k]
                st.acked, st.expires_at, st.inflight = value, parse_time(r["expires_at"]), None
                led.acked_writes += 1
                led.saw_rev(r["rev"])
            time.sleep(0.01)


def claim_worker(sock: str, w: int, mode: str, stop: threading.Event, led: Ledger, rng: random.Random) -> None:
    ns = f"crash/{mode}/claims"
    resources = [f"c{w}-r{i}" for i in range(6)]
    c = connect_or_none(sock, f"claims-{w}", 15)
    if c is None:
        return
    with c:
        try:
            live = {x["resource"]: x["token"] for x in c.claims(ns)["claims"]}
        except DROPPED:
            return
        with led.lock:
            for r in resources:  # adopt what the checker accepted (an in-flight acquire that landed)
                st = led.claims[r]
                st.held = live.get(r)
                st.inflight = None
                if st.held is not None:
                    st.last_token = max(st.last_token, st.held)
        while not stop.is_set():
            r = rng.choice(resources)
            with led.lock:
                st = led.claims[r]
                held = st.held
                st.inflight = ("acquire", None) if held is None else ("release", held)
                led.operations += 1
            try:
                if held is None:
                    res = c.acquire(ns, r, CLAIM_TTL_MS)
                else:
                    res = c.release(ns, r, held)
            except DROPPED:
                return
            except MnemoError as e:
                led.error(f"claim {r} (held={held}): {e!r}")
                return
            with led.lock:
                st = led.claims[r]
                st.inflight = None
                led.acked_writes += 1
                if held is None:
                    token = res["token"]
                    if token <= st.last_token:
                        led.errors.append(f"fencing token for {r} went down: {token} <= {st.last_token}")
                    st.held = token
                    st.last_token = max(st.last_token, token)
                    led.max_token = max(led.max_token, token)
                    led.saw_rev(token)
                else:
                    if res.get("released") is not True:
                        led.errors.append(f"release of {r} token {held} answered {res!r}")
                    st.held = None


def ep_worker(sock: str, w: int, mode: str, stop: threading.Event, led: Ledger, rng: random.Random) -> None:
    """Appends with an idempotency key; an append whose reply was lost in a crash is retried
    (same key, same payload) after the restart: it must land exactly once."""
    ns = f"crash/{mode}/ep/w{w}"
    c = connect_or_none(sock, f"ep-{w}", 15)
    if c is None:
        return

    def append(params: Dict[str, Any]) -> bool:
        content = params["content"]
        with led.lock:
            led.ep_inflight.add(content)
            led.ep_pending[content] = params
            led.operations += 1
        try:
            r = c.call("ep.append", params)
        except DROPPED:
            return False
        except MnemoError as e:
            led.error(f"ep.append: {e!r}")
            return False
        with led.lock:
            led.ep_inflight.discard(content)
            led.ep_pending.pop(content, None)
            led.ep[r["id"]] = (params["ns"], content)
            led.acked_writes += 1
            led.saw_rev(r["rev"])
        return True

    with c:
        with led.lock:
            retry = [p for p in led.ep_pending.values() if p["ns"] == ns]
        for params in retry:
            if not append(params):
                return
            with led.lock:
                led.ep_retried += 1
        n = 0
        while not stop.is_set():
            n += 1
            content = f"ep {time.time_ns()} w{w} n{n} " + " ".join(rng.choice(WORDS) for _ in range(rng.randrange(3, 40)))
            params = {"ns": ns, "kind": "step", "content": content, "tags": ["crash", mode], "data": {"n": n},
                      "idempotency_key": f"k-{time.time_ns()}-{n}"}
            if not append(params):
                return


def sem_worker(sock: str, w: int, mode: str, rnd: int, stop: threading.Event, led: Ledger,
               rng: random.Random) -> None:
    search_ns = f"crash/{mode}/sem/r{rnd}"          # unique ids: the searcher compares these
    repl_ns = f"crash/{mode}/semrepl"               # a few ids replaced over and over
    c = connect_or_none(sock, f"sem-{w}", 30)
    if c is None:
        return
    with c:
        n = 0
        while not stop.is_set():
            n += 1
            text = " ".join(rng.choice(WORDS) for _ in range(rng.randrange(3, 12))) + f" {time.time_ns()}"
            with led.lock:
                fresh = led.sem_count[search_ns] < SEM_ROUND_CAP and rng.random() < 0.8
                if fresh:
                    ns, rid = search_ns, f"s{rnd}-{w}-{n}"
                    led.sem_count[search_ns] += 1
                else:
                    ns, rid = repl_ns, f"repl-{w}-{rng.randrange(8)}"
                led.sem[(ns, rid)].inflight = text
                led.operations += 1
            try:
                r = c.call("sem.upsert", ns=ns, id=rid, text=text, tags=[mode])
            except DROPPED:
                return
            except MnemoError as e:
                led.error(f"sem.upsert {ns}/{rid}: {e!r}")
                return
            with led.lock:
                st = led.sem[(ns, rid)]
                st.acked, st.acked_rev, st.inflight = text, r["version"], None
                led.acked_writes += 1
                led.saw_rev(r["version"])
                if ns == search_ns:
                    led.sem_max_rev[ns] = max(led.sem_max_rev[ns], r["version"])


def searcher(sock: str, mode: str, rnd: int, stop: threading.Event, led: Ledger, rng: random.Random) -> None:
    ns = f"crash/{mode}/sem/r{rnd}"
    c = connect_or_none(sock, "searcher", 30)
    if c is None:
        return
    with c:
        while not stop.wait(rng.uniform(0.05, 0.25)):
            text = " ".join(rng.choice(WORDS) for _ in range(rng.randrange(1, 4)))
            with led.lock:
                floor = led.sem_max_rev[ns]
                led.operations += 1
            try:
                # Vector mode: its scores do not depend on k (hybrid's are scaled over the
                # candidates, which the k=1000 check after the restart would change).
                r = c.call("sem.search", ns=ns, text=text, k=10, mode="vector")
            except DROPPED:
                return
            except MnemoError as e:
                led.error(f"sem.search: {e!r}")
                return
            hits = [(h["id"], h["score"], h["provenance"]["rev"]) for h in r["hits"]]
            with led.lock:
                led.searches.append(Search(ns, text, hits, floor))


# -- checks after a restart ------------------------------------------------------------------------

def check_after_restart(c: Client, mode: str, led: Ledger, rounds_searches: List[Search]) -> Tuple[List[str], int]:
    """Returns (problems, acknowledged writes lost)."""
    problems: List[str] = []
    lost = 0
    # Working memory: the last acked value, or the in-flight one written after it.
    ns = f"crash/{mode}/wm"
    keys = sorted(led.wm)
    replies = c.pipeline([("wm.get", {"ns": ns, "key": k}) for k in keys])
    for k, g in zip(keys, replies):
        st = led.wm[k]
        if isinstance(g, Exception):
            problems.append(f"wm.get {k}: {g!r}")
            continue
        got = g.get("value") if g.get("found") else None
        if got == st.acked and (st.acked is None or g.get("version") == st.acked_version):
            continue
        if st.inflight is not None and got == st.inflight and g.get("version", 0) > st.acked_version:
            continue
        if st.acked is not None:
            lost += 1
        problems.append(f"wm {k}: stored {short(got)} (v{g.get('version')}), acknowledged {short(st.acked)} "
                        f"(v{st.acked_version}), in flight {short(st.inflight)}")
    # TTL keys: present with the acked (or in-flight) value until they expire, gone after.
    ns = f"crash/{mode}/ttl"
    keys = sorted(led.ttl)
    replies = c.pipeline([("wm.get", {"ns": ns, "key": k}) for k in keys])
    now = time.time()
    for k, g in zip(keys, replies):
        st = led.ttl[k]
        if isinstance(g, Exception):
            problems.append(f"wm.get {k}: {g!r}")
            continue
        got = g.get("value") if g.get("found") else None
        if got is not None and got not in (st.acked, st.inflight):
            problems.append(f"ttl {k}: stored {got!r}, acknowledged {st.acked!r}, in flight {st.inflight!r}")
        elif got is not None and got == st.acked and g.get("expires_at") \
                and abs(parse_time(g["expires_at"]) - st.expires_at) > 0.002:
            problems.append(f"ttl {k}: expires_at changed: {g['expires_at']} vs acknowledged {st.expires_at}")
        elif got is not None and got == st.acked and now > st.expires_at + 0.05:
            problems.append(f"ttl {k}: returned {now - st.expires_at:.2f} s after it expired")
        elif got is None and st.acked is not None and st.inflight is None and now < st.expires_at - 0.3:
            lost += 1
            problems.append(f"ttl {k}: gone {st.expires_at - now:.2f} s before its expiry")
    # Claims: held with the acked token, or the in-flight operation's outcome.
    live = {x["resource"]: x["token"] for x in c.claims(f"crash/{mode}/claims")["claims"]}
    for r, st in sorted(led.claims.items()):
        got = live.get(r)
        ok = got == st.held
        if not ok and st.inflight is not None:
            kind, token = st.inflight
            if kind == "release" and got is None:
                ok = True
            if kind == "acquire" and got is not None and got > st.last_token:
                ok = True
        if not ok:
            if st.held is not None:
                lost += 1
            problems.append(f"claim {r}: token {got}, acknowledged {st.held}, in flight {st.inflight}")
    # Episodic: every acked record, same content; nothing nobody wrote.
    found: Dict[str, Dict[str, Any]] = {}
    cursor = None
    while True:
        params: Dict[str, Any] = {"ns": f"crash/{mode}/ep", "limit": 1000}
        if cursor:
            params["cursor"] = cursor
        page = c.call("ep.query", params)
        for rec in page["records"]:
            found[rec["id"]] = rec
        cursor = page.get("cursor")
        if not cursor or not page["records"]:
            break
    for rid, (ns_, content) in led.ep.items():
        rec = found.get(rid)
        if rec is None or rec["content"] != content or rec["ns"] != ns_:
            lost += 1
            problems.append(f"ep {rid}: acknowledged in {ns_}, found {rec!r}")
    copies: Dict[str, int] = defaultdict(int)
    for rid, rec in found.items():
        copies[rec["content"]] += 1
        if rid not in led.ep and rec["content"] not in led.ep_inflight:
            problems.append(f"ep {rid}: a record nobody wrote: {rec['content'][:60]!r}")
    for content, n in copies.items():
        if n > 1:
            problems.append(f"ep: {n} records with one idempotency key and content {content[:60]!r}")
    # Semantic: every acked record (or the in-flight replacement).
    items = sorted(led.sem.items())
    for chunk in range(0, len(items), 500):
        part = items[chunk:chunk + 500]
        replies = c.pipeline([("sem.get", {"ns": ns_, "id": rid}) for (ns_, rid), _ in part])
        for ((ns_, rid), st), g in zip(part, replies):
            if isinstance(g, Exception):
                problems.append(f"sem.get {ns_}/{rid}: {g!r}")
                continue
            got = g.get("text") if g.get("found") else None
            if got == st.acked or (st.inflight is not None and got == st.inflight):
                continue
            if st.acked is not None:
                lost += 1
            problems.append(f"sem {ns_}/{rid}: stored {short(got)}, acknowledged {short(st.acked)}, "
                            f"in flight {short(st.inflight)}")
    # Searches: reproduced bit for bit over what they could see.
    by_ns: Dict[Tuple[str, str], List[Tuple[str, float, int]]] = {}
    for s in rounds_searches:
        key = (s.ns, s.text)
        if key not in by_ns:
            r = c.call("sem.search", ns=s.ns, text=s.text, k=1000, mode="vector")
            by_ns[key] = [(h["id"], h["score"], h["provenance"]["rev"]) for h in r["hits"]]
        problems.extend(search_mismatch(s, by_ns[key]))
    return problems, lost


def short(v: Any, n: int = 90) -> str:
    text = repr(v)
    return text if len(text) <= n else text[:n] + "...'"


def search_mismatch(s: Search, after: List[Tuple[str, float, int]]) -> List[str]:
    """The pre-kill top-k must equal the post-restart ranking cut at some revision X that
    is at least every revision the pre-kill search returned or had acknowledged."""
    k = 10
    floor = max([s.floor_rev] + [rev for _, _, rev in s.hits])
    cutoffs = sorted({rev for _, _, rev in after if rev >= floor} | {floor})
    want = [(i, sc) for i, sc, _ in s.hits]
    for x in cutoffs:
        top = [(i, sc) for i, sc, rev in after if rev <= x][:k]
        if top == want:
            return []
    cut = [(i, sc) for i, sc, rev in after if rev <= floor][:k]
    return [f"sem.search {s.ns} {s.text!r}: before the kill {want}, after the restart (records up to rev "
            f"{floor}) {cut}"]


# -- the test ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["normal", "strict"])
def test_kill9_under_mixed_load_loses_no_acknowledged_write(mode, daemons, rng, report, settings):
    d: Daemon = daemons(f"crash-{mode}", config=config_for(mode))
    led = Ledger()
    highest_rev_after_restart = 0
    highest_fresh_token = 0
    all_problems: List[str] = []
    total_lost = 0
    integrity_failures: List[str] = []
    searches_checked = 0
    kill_times: List[float] = []
    startup_kills: List[float] = []
    for rnd in range(settings.crash_rounds):
        stop = threading.Event()
        threads = []
        for w in range(WM_WORKERS):
            threads.append(threading.Thread(target=wm_worker, args=(d.sock, w, mode, stop, led, random.Random(rng.random()))))
        threads.append(threading.Thread(target=ttl_worker, args=(d.sock, 0, mode, stop, led, random.Random(rng.random()))))
        for w in range(CLAIM_WORKERS):
            threads.append(threading.Thread(target=claim_worker, args=(d.sock, w, mode, stop, led, random.Random(rng.random()))))
        for w in range(EP_WORKERS):
            threads.append(threading.Thread(target=ep_worker, args=(d.sock, w, mode, stop, led, random.Random(rng.random()))))
        for w in range(SEM_WORKERS):
            threads.append(threading.Thread(target=sem_worker, args=(d.sock, w, mode, rnd, stop, led, random.Random(rng.random()))))
        threads.append(threading.Thread(target=searcher, args=(d.sock, mode, rnd, stop, led, random.Random(rng.random()))))
        searches_before = len(led.searches)
        for t in threads:
            t.daemon = True
            t.start()
        # A random moment: usually somewhere in the round, sometimes right after the start.
        delay = rng.uniform(0.0, 0.3) if rng.random() < 0.2 else rng.uniform(0.3, settings.crash_round_seconds)
        time.sleep(delay)
        kill_times.append(round(delay, 2))
        d.kill9()
        stop.set()
        for t in threads:
            t.join(timeout=30)
            assert not t.is_alive(), f"round {rnd}: a load thread hung after the kill"
        integrity = integrity_check_copies(d.data_dir, os.path.join(d.workdir, "ic"))
        for name, res in integrity.items():
            if res != "ok":
                integrity_failures.append(f"round {rnd} {name}: {res}")
        if mode != "volatile":  # (volatile keeps no files; used only to check that this test can fail)
            assert "episodic.sqlite" in integrity and "semantic.sqlite" in integrity, integrity
        if rng.random() < 0.3:
            # Also kill a start-up: during recovery (journal replay, the start-up snapshot,
            # loading the matrices) or just after it.
            d.spawn()
            startup_kill = rng.uniform(0.0, 0.5)
            time.sleep(startup_kill)
            d.kill9()
            startup_kills.append(round(startup_kill, 2))
        d.start()
        with d.client("checker") as c:
            # This round's searches, and a sample of earlier ones (their collections are
            # never written again, so they must stay reproducible through every restart).
            older = led.searches[:searches_before]
            round_searches = led.searches[searches_before:] + rng.sample(older, min(10, len(older)))
            problems, lost = check_after_restart(c, mode, led, round_searches)
            searches_checked += len(round_searches)
            total_lost += lost
            all_problems.extend(f"round {rnd}: {p}" for p in problems)
            rev = c.health()["rev"]
            if rev < led.max_rev:
                all_problems.append(f"round {rnd}: revision after restart {rev} < acknowledged {led.max_rev}")
            if rev < highest_rev_after_restart:
                all_problems.append(f"round {rnd}: revision went down: {rev} < {highest_rev_after_restart}")
            highest_rev_after_restart = rev
            fresh = c.set(f"crash/{mode}/probe", "p", rnd)
            if fresh["rev"] <= led.max_rev:
                all_problems.append(f"round {rnd}: new write took rev {fresh['rev']} <= acknowledged {led.max_rev}")
            tok = c.acquire(f"crash/{mode}/probe", f"fresh-{rnd}", 1000)["token"]
            if tok <= led.max_token or tok <= highest_fresh_token:
                all_problems.append(f"round {rnd}: new fencing token {tok} <= acknowledged {led.max_token} "
                                    f"or earlier fresh {highest_fresh_token}")
            highest_fresh_token = tok
            led.saw_rev(fresh["rev"])
            led.saw_rev(tok)
        if all_problems and not settings.long:
            break  # keep the evidence of the first bad round
    d.stop()
    report.record(f"crash_kill9[{mode}]", runs=rnd + 1, operations=led.operations,
                  faults=rnd + 1 + len(startup_kills), startup_kills_after_s=startup_kills,
                  acknowledged_writes=led.acked_writes, data_lost=total_lost,
                  searches_compared=searches_checked, ep_records=len(led.ep), ep_retried=led.ep_retried, sem_records=len(led.sem),
                  final_rev=highest_rev_after_restart, kill_after_s=kill_times)
    assert not led.errors, "errors under load:\n" + "\n".join(led.errors[:20])
    assert not integrity_failures, "\n".join(integrity_failures)
    assert total_lost == 0 and not all_problems, f"{total_lost} acknowledged writes lost:\n" + "\n".join(all_problems[:40])
    assert led.acked_writes > 0
    assert searches_checked > 0, "no search was taken before a kill"
