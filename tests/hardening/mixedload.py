"""The mixed concurrent write load of the crash tests, its client-side ledger and the
checker that compares a restarted daemon with it (test_crash.py: kill -9;
test_powerloss.py: kill -9 and a simulated power loss).

Client threads write to every tier (wm.set with compare-and-set, TTL keys,
claim.acquire/release, ep.append, sem.upsert with text embedded by the server) while a
searcher takes sem.search results; every write whose reply came back is recorded with the
CLOCK_MONOTONIC time of its reply (``time.monotonic_ns()``), and, since the last check,
with the values acknowledged before it (its history), so that the checker can tell which
older acknowledged value a key was rolled back to.

The checker (``check_after_restart``) asks a ``LossPolicy`` whether an acknowledged write
had to survive. ``MUST_KEEP_ALL`` (kill -9 in either mode, power loss in ``strict``): every
one; then a key, claim or record may hold only its last acknowledged value or the one write
in flight when the connection dropped (never a value nobody wrote, never an older one).
With a policy that lets some writes go (power loss in ``normal``), it may also hold an
older acknowledged value, provided that no write that had to survive was rolled back; the
rolled-back writes are counted (``lost_allowed``). After the check the ledger adopts what
the daemon holds, so the next round starts from it.
"""
from __future__ import annotations

import random
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from mnemo_client import Client, ConnectionLost, MnemoError

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

# A history entry: (value, version or token or rev, ack time in CLOCK_MONOTONIC ns). Entry 0
# is the state the last check found (ack time 0: it had to survive), or nothing yet.

@dataclass
class KeyState:
    acked: Any = None          # last acknowledged value (None: never acknowledged)
    acked_version: int = 0
    inflight: Any = None       # a write sent after it whose reply never came
    history: List[Tuple[Any, int, int]] = field(default_factory=lambda: [(None, 0, 0)])


@dataclass
class ClaimState:
    held: Optional[int] = None         # acknowledged: held with this token, or free
    last_token: int = 0                # highest token ever granted for this resource
    inflight: Optional[Tuple[str, Optional[int]]] = None  # ("acquire", None) | ("release", token)
    history: List[Tuple[Optional[int], int, int]] = field(default_factory=lambda: [(None, 0, 0)])


@dataclass
class SemState:
    acked: Optional[str] = None
    acked_rev: int = 0
    inflight: Optional[str] = None
    history: List[Tuple[Optional[str], int, int]] = field(default_factory=lambda: [(None, 0, 0)])


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
    # (value, expires_at, ack ns)
    history: List[Tuple[Any, float, int]] = field(default_factory=lambda: [(None, 0.0, 0)])


@dataclass
class Ledger:
    lock: threading.Lock = field(default_factory=threading.Lock)
    wm: Dict[str, KeyState] = field(default_factory=lambda: defaultdict(KeyState))
    claims: Dict[str, ClaimState] = field(default_factory=lambda: defaultdict(ClaimState))
    ttl: Dict[str, TTLState] = field(default_factory=lambda: defaultdict(TTLState))
    ep: Dict[str, Tuple[str, str]] = field(default_factory=dict)       # id -> (ns, content)
    ep_acked_ns: Dict[str, int] = field(default_factory=dict)          # id -> ack time (0: checked since)
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
            acked_ns = time.monotonic_ns()
            versions[k] = r["version"]
            with led.lock:
                st = led.wm[k]
                st.acked, st.acked_version, st.inflight = value, r["version"], None
                st.history.append((value, r["version"], acked_ns))
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
            acked_ns = time.monotonic_ns()
            with led.lock:
                st = led.ttl[k]
                st.acked, st.expires_at, st.inflight = value, parse_time(r["expires_at"]), None
                st.history.append((value, st.expires_at, acked_ns))
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
                st.history = [(st.held, 0, 0)]
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
            acked_ns = time.monotonic_ns()
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
                st.history.append((st.held, st.held or 0, acked_ns))


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
        acked_ns = time.monotonic_ns()
        with led.lock:
            led.ep_inflight.discard(content)
            led.ep_pending.pop(content, None)
            led.ep[r["id"]] = (params["ns"], content)
            led.ep_acked_ns[r["id"]] = acked_ns
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
            acked_ns = time.monotonic_ns()
            with led.lock:
                st = led.sem[(ns, rid)]
                st.acked, st.acked_rev, st.inflight = text, r["version"], None
                st.history.append((text, r["version"], acked_ns))
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


def start_load(sock: str, mode: str, rnd: int, led: Ledger, rng: random.Random) -> Tuple[threading.Event, List[threading.Thread]]:
    """Starts every load thread of round ``rnd``; they end when the daemon goes away or
    ``stop`` is set (see ``stop_load``)."""
    stop = threading.Event()
    threads = []
    for w in range(WM_WORKERS):
        threads.append(threading.Thread(target=wm_worker, args=(sock, w, mode, stop, led, random.Random(rng.random()))))
    threads.append(threading.Thread(target=ttl_worker, args=(sock, 0, mode, stop, led, random.Random(rng.random()))))
    for w in range(CLAIM_WORKERS):
        threads.append(threading.Thread(target=claim_worker, args=(sock, w, mode, stop, led, random.Random(rng.random()))))
    for w in range(EP_WORKERS):
        threads.append(threading.Thread(target=ep_worker, args=(sock, w, mode, stop, led, random.Random(rng.random()))))
    for w in range(SEM_WORKERS):
        threads.append(threading.Thread(target=sem_worker, args=(sock, w, mode, rnd, stop, led, random.Random(rng.random()))))
    threads.append(threading.Thread(target=searcher, args=(sock, mode, rnd, stop, led, random.Random(rng.random()))))
    for t in threads:
        t.daemon = True
        t.start()
    return stop, threads


def stop_load(stop: threading.Event, threads: List[threading.Thread], rnd: int) -> None:
    """After the kill: every load thread must end (bounded)."""
    stop.set()
    for t in threads:
        t.join(timeout=30)
        assert not t.is_alive(), f"round {rnd}: a load thread hung after the kill"


# -- checks after a restart ------------------------------------------------------------------------

class LossPolicy:
    """Which acknowledged writes had to survive. The default: every one (kill -9 in either
    mode; power loss in ``strict``)."""

    name = "all acknowledged writes"

    def covered(self, tier: str, acked_ns: int) -> bool:
        """Whether a write of ``tier`` ("wm", "ttl", "claim", "ep", "sem") acknowledged at
        ``acked_ns`` (CLOCK_MONOTONIC) had to survive."""
        return True

    # sem.search results are compared only when no acknowledged or in-flight write may have
    # been lost (a search may have seen a record that a power loss then took).
    check_searches = True


MUST_KEEP_ALL = LossPolicy()


@dataclass
class CheckResult:
    problems: List[str] = field(default_factory=list)
    lost: int = 0            # acknowledged writes that had to survive and did not
    lost_allowed: int = 0    # acknowledged writes rolled back that the policy let go
    allowed_by_tier: Dict[str, int] = field(default_factory=lambda: defaultdict(int))
    oldest_allowed_ns: Dict[str, int] = field(default_factory=dict)   # tier -> earliest ack time lost
    allowed: List[Tuple[str, int]] = field(default_factory=list)       # (tier, ack ns) of each allowed loss
    lost_by_tier: Dict[str, int] = field(default_factory=lambda: defaultdict(int))
    lost_acks: List[Tuple[str, int]] = field(default_factory=list)     # (tier, ack ns; 0: before the last check)


def _judge(history: List[Tuple[Any, int, int]], matches: Callable[[Tuple[Any, int, int]], bool],
           tier: str, policy: LossPolicy) -> Tuple[Optional[int], int]:
    """Where the stored state is in ``history``: (index of the newest matching entry at or
    after the last entry that had to survive, or None; that last entry's index)."""
    must = 0
    for i, h in enumerate(history):
        if h[2] == 0 or policy.covered(tier, h[2]):
            must = i
    for i in range(len(history) - 1, must - 1, -1):
        if matches(history[i]):
            return i, must
    return None, must


def _lost(res: CheckResult, tier: str, acked_ns: int) -> None:
    res.lost += 1
    res.lost_by_tier[tier] += 1
    res.lost_acks.append((tier, acked_ns))


def _allowed(res: CheckResult, tier: str, history: List[Tuple[Any, int, int]], i: int) -> None:
    rolled = history[i + 1:]
    if not rolled:
        return
    res.lost_allowed += len(rolled)
    res.allowed_by_tier[tier] += len(rolled)
    res.allowed.extend((tier, h[2]) for h in rolled)
    first = min(h[2] for h in rolled)
    res.oldest_allowed_ns[tier] = min(res.oldest_allowed_ns.get(tier, first), first)


def check_after_restart(c: Client, mode: str, led: Ledger, rounds_searches: List[Search],
                        policy: LossPolicy = MUST_KEEP_ALL) -> CheckResult:
    """Compares the restarted daemon with the ledger; then the ledger adopts what it holds."""
    res = CheckResult()
    problems = res.problems
    # Working memory: the last acked value, or the in-flight one written after it, or (when
    # the policy allows) an older acknowledged one.
    ns = f"crash/{mode}/wm"
    keys = sorted(led.wm)
    replies = c.pipeline([("wm.get", {"ns": ns, "key": k}) for k in keys])
    for k, g in zip(keys, replies):
        st = led.wm[k]
        if isinstance(g, Exception):
            problems.append(f"wm.get {k}: {g!r}")
            continue
        got = g.get("value") if g.get("found") else None
        version = g.get("version", 0) if g.get("found") else 0
        if got == st.acked and (st.acked is None or version == st.acked_version):
            pass
        elif st.inflight is not None and got == st.inflight and version > st.acked_version:
            pass
        else:
            i, must = _judge(st.history, lambda h: h[0] == got and (got is None or h[1] == version), "wm", policy)
            if i is not None:
                _allowed(res, "wm", st.history, i)
            else:
                if st.acked is not None:
                    _lost(res, "wm", st.history[-1][2])
                problems.append(f"wm {k}: stored {short(got)} (v{g.get('version')}), acknowledged {short(st.acked)} "
                                f"(v{st.acked_version}), in flight {short(st.inflight)}"
                                + (f", last one that had to survive {short(st.history[must][0])} (v{st.history[must][1]})"
                                   if policy is not MUST_KEEP_ALL else ""))
        st.acked, st.acked_version, st.inflight = got, version, None
        st.history = [(got, version, 0)]
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
            # An older acknowledged value: only if the policy let the newer ones go.
            i, must = _judge(st.history, lambda h: h[0] == got, "ttl", policy)
            if i is None:
                problems.append(f"ttl {k}: stored {got!r}, acknowledged {st.acked!r}, in flight {st.inflight!r}")
            else:
                _allowed(res, "ttl", st.history, i)
                if now > st.history[i][1] + 0.05:
                    problems.append(f"ttl {k}: rolled back to {got!r}, returned {now - st.history[i][1]:.2f} s after it expired")
        elif got is not None and got == st.acked and g.get("expires_at") \
                and abs(parse_time(g["expires_at"]) - st.expires_at) > 0.002:
            problems.append(f"ttl {k}: expires_at changed: {g['expires_at']} vs acknowledged {st.expires_at}")
        elif got is not None and got == st.acked and now > st.expires_at + 0.05:
            problems.append(f"ttl {k}: returned {now - st.expires_at:.2f} s after it expired")
        elif got is None and st.acked is not None and st.inflight is None and now < st.expires_at - 0.3:
            # Gone before its expiry: allowed only as a rollback to an entry that is gone
            # (never written, or expired by now) after the last one that had to survive.
            i, must = _judge(st.history, lambda h: h[0] is None or now >= h[1] - 0.3, "ttl", policy)
            if i is None:
                _lost(res, "ttl", st.history[-1][2])
                problems.append(f"ttl {k}: gone {st.expires_at - now:.2f} s before its expiry")
            else:
                _allowed(res, "ttl", st.history, i)
        if got is None:
            st.acked, st.expires_at = None, 0.0
        elif got != st.acked:
            st.acked = got
            st.expires_at = parse_time(g["expires_at"]) if g.get("expires_at") else 0.0
        st.inflight = None
        st.history = [(st.acked, st.expires_at, 0)]
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
            i, must = _judge(st.history, lambda h: h[0] == got, "claim", policy)
            if i is not None:
                _allowed(res, "claim", st.history, i)
            else:
                if st.held is not None:
                    _lost(res, "claim", st.history[-1][2])
                problems.append(f"claim {r}: token {got}, acknowledged {st.held}, in flight {st.inflight}")
        st.held, st.inflight = got, None
        if got is not None:
            st.last_token = max(st.last_token, got)
        st.history = [(got, got or 0, 0)]
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
    gone: List[str] = []
    for rid, (ns_, content) in led.ep.items():
        rec = found.get(rid)
        if rec is None and not policy.covered("ep", led.ep_acked_ns.get(rid, 0) or 0) \
                and led.ep_acked_ns.get(rid, 0):
            gone.append(rid)
            res.lost_allowed += 1
            res.allowed_by_tier["ep"] += 1
            t = led.ep_acked_ns[rid]
            res.oldest_allowed_ns["ep"] = min(res.oldest_allowed_ns.get("ep", t), t)
            res.allowed.append(("ep", t))
            continue
        if rec is None or rec["content"] != content or rec["ns"] != ns_:
            _lost(res, "ep", led.ep_acked_ns.get(rid, 0))
            problems.append(f"ep {rid}: acknowledged in {ns_}, found {rec!r}")
    for rid in gone:
        del led.ep[rid]
    for rid in led.ep:
        led.ep_acked_ns[rid] = 0
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
                pass
            else:
                i, must = _judge(st.history, lambda h: h[0] == got, "sem", policy)
                if i is not None:
                    _allowed(res, "sem", st.history, i)
                else:
                    if st.acked is not None:
                        _lost(res, "sem", st.history[-1][2])
                    problems.append(f"sem {ns_}/{rid}: stored {short(got)}, acknowledged {short(st.acked)}, "
                                    f"in flight {short(st.inflight)}")
            st.acked, st.inflight = got, None
            st.acked_rev = g.get("version", 0) if got is not None else 0
            st.history = [(got, st.acked_rev, 0)]
    # Searches: reproduced bit for bit over what they could see.
    if policy.check_searches:
        by_ns: Dict[Tuple[str, str], List[Tuple[str, float, int]]] = {}
        for s in rounds_searches:
            key = (s.ns, s.text)
            if key not in by_ns:
                r = c.call("sem.search", ns=s.ns, text=s.text, k=1000, mode="vector")
                by_ns[key] = [(h["id"], h["score"], h["provenance"]["rev"]) for h in r["hits"]]
            problems.extend(search_mismatch(s, by_ns[key]))
    return res


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


def check_revisions(c: Client, mode: str, rnd: int, led: Ledger, highest_rev_after_restart: int,
                    highest_fresh_token: int) -> Tuple[List[str], int, int]:
    """The global revision and fencing tokens after a restart: never below an acknowledged
    one, and new ones above every one seen. Returns (problems, the revision now, the new
    fencing token)."""
    problems: List[str] = []
    rev = c.health()["rev"]
    if rev < led.max_rev:
        problems.append(f"round {rnd}: revision after restart {rev} < acknowledged {led.max_rev}")
    if rev < highest_rev_after_restart:
        problems.append(f"round {rnd}: revision went down: {rev} < {highest_rev_after_restart}")
    fresh = c.set(f"crash/{mode}/probe", "p", rnd)
    if fresh["rev"] <= led.max_rev:
        problems.append(f"round {rnd}: new write took rev {fresh['rev']} <= acknowledged {led.max_rev}")
    tok = c.acquire(f"crash/{mode}/probe", f"fresh-{rnd}", 1000)["token"]
    if tok <= led.max_token or tok <= highest_fresh_token:
        problems.append(f"round {rnd}: new fencing token {tok} <= acknowledged {led.max_token} "
                        f"or earlier fresh {highest_fresh_token}")
    led.saw_rev(fresh["rev"])
    led.saw_rev(tok)
    return problems, rev, tok
