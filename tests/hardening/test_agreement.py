"""Agreement primitives against real daemons: barriers across processes and a kill -9,
broken barriers, randomized vote schedules checked against a model, decisions and
leaders fencing writes, a paused leader replaced.

Knobs: MNEMO_AGREEMENT_SCHEDULES (vote schedules, default 1000), MNEMO_HARDENING_SEED.
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from typing import Any, Dict, List, Optional

import pytest

from harness import REPO, SETTINGS, _env_int, wait_until
from mnemo_client import Broken, Client, Conflict, Fenced, Forbidden, MnemoError

SCHEDULES = _env_int("MNEMO_AGREEMENT_SCHEDULES", 1000)
NS = "agree/t"

# One party, in a process of its own: arrives `rounds` times with a wait, and prints the
# generation and arrival count of every release it gets.
PARTY = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from mnemo_client import Client
sock, agent, parties, rounds = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
seen = []
with Client(sock, agent=agent, timeout=120) as c:
    for _ in range(rounds):
        gen = None
        while True:   # a wait that ends before the barrier opens asks again about its generation
            r = c.arrive("agree/t", "gate", parties, generation=gen, value={"agent": agent}, wait_ms=20000)
            gen = r["generation"]
            if r["state"] == "open":
                break
        seen.append([r["generation"], r["arrived"], sorted(a["agent"] for a in r["arrivals"])])
print(json.dumps(seen))
"""


def test_barrier_across_processes_releases_each_party_once_per_generation(daemons, report):
    d = daemons("barrier32")
    parties, rounds = 32, 3
    procs = [subprocess.Popen([sys.executable, "-c", PARTY, str(REPO / "clients" / "python"), d.sock, f"agent-{i:02d}",
                               str(parties), str(rounds)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(parties)]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, err[-2000:]
        outs.append(json.loads(out))
    everyone = sorted(f"agent-{i:02d}" for i in range(parties))
    for seen in outs:
        # Released once per generation, in order, each time with all 32 parties.
        assert [s[0] for s in seen] == [1, 2, 3]
        assert all(s[1] == parties and s[2] == everyone for s in seen)
    with d.client("checker") as c:
        b = c.barrier_get(NS, "gate")
        assert b["generation"] == rounds + 1 and b["arrived"] == 0 and b["last"]["generation"] == rounds
    report.record("barrier_32_processes", runs=rounds, operations=parties * rounds, parties=parties, generations=rounds)


def test_barrier_arrivals_survive_kill9(daemons, report):
    d = daemons("barrierkill", config='durability = "strict"\n')
    parties = 8
    for i in range(parties // 2):
        with d.client(f"p{i}") as c:
            assert c.arrive(NS, "k", parties, value=i)["state"] == "waiting"
    d.kill9()
    d.start()
    with d.client("checker") as c:
        b = c.barrier_get(NS, "k")
        assert b["generation"] == 1 and b["arrived"] == parties // 2
        assert [a["agent"] for a in b["arrivals"]] == [f"p{i}" for i in range(parties // 2)]
    last: Dict[str, Any] = {}
    for i in range(parties // 2, parties):
        with d.client(f"p{i}") as c:
            last = c.arrive(NS, "k", parties, value=i)
    assert last["state"] == "open" and [a["value"] for a in last["arrivals"]] == list(range(parties))
    # A party that arrived before the kill asks again about its generation: it opened.
    with d.client("p0") as c:
        assert c.arrive(NS, "k", parties, generation=1)["state"] == "open"
    report.record("barrier_kill9", runs=1, faults=1, acknowledged_writes=parties, data_lost=0)


def test_broken_barrier_is_broken_to_every_waiter(daemons, report):
    d = daemons("barrierbroken")
    errors: List[Optional[BaseException]] = [None] * 3

    def wait(i: int) -> None:
        with d.client(f"w{i}") as c:
            try:
                c.arrive(NS, "late", 4, ttl_ms=400, wait_ms=10_000)
            except MnemoError as e:
                errors[i] = e

    threads = [threading.Thread(target=wait, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert all(isinstance(e, Broken) and e.data["generation"] == 1 for e in errors), errors
    with d.client("w0") as c:
        with pytest.raises(Broken):
            c.arrive(NS, "late", 4, generation=1)
        assert c.arrive(NS, "late", 4)["generation"] == 2  # the next arrival starts anew
    report.record("barrier_broken", runs=1, waiters=3)


class Model:
    """What a round must come to, by the contract."""

    def __init__(self, voters: Optional[List[str]], quorum: int) -> None:
        self.voters, self.quorum = voters, quorum
        self.ballots: Dict[str, bool] = {}
        self.status = "open"

    def cast(self, agent: str, yes: bool) -> str:
        if self.voters is not None and agent not in self.voters:
            return "FORBIDDEN"
        if agent in self.ballots:
            return "ok" if self.ballots[agent] == yes else "CONFLICT"
        if self.status != "open":
            return "CONFLICT"
        self.ballots[agent] = yes
        y = sum(self.ballots.values())
        n = len(self.ballots) - y
        if y >= self.quorum:
            self.status = "accepted"
        elif self.voters is not None and n > len(self.voters) - self.quorum:
            self.status = "rejected"
        return "ok"


def test_randomized_vote_schedules_decide_once_with_the_right_outcome(daemons, report):
    d = daemons("votes")
    rng = random.Random(SETTINGS.seed)
    agents = [f"v{i}" for i in range(6)] + ["outsider"]
    conns = {a: d.client(a) for a in agents}
    watcher = d.client("watcher")
    watch = watcher.call("watch.subscribe", {"ns": NS, "tiers": ["vote"]})
    mismatches: List[str] = []
    expiring: Dict[str, Model] = {}
    casts = 0
    try:
        for n in range(SCHEDULES):
            name = f"p{n}"
            voters = sorted(rng.sample(agents[:6], rng.randint(1, 5))) if rng.random() < 0.8 else None
            quorum = rng.randint(1, len(voters)) if voters else rng.randint(1, 4)
            short = rng.random() < 0.05
            opener = conns[rng.choice(agents)]
            opener.vote_open(NS, name, voters=voters, quorum=quorum, ttl_ms=300 if short else 600_000)
            model = Model(voters, quorum)
            for _ in range(rng.randint(0, 10)):
                agent = rng.choice(agents)
                yes = rng.random() < 0.6
                if rng.random() < 0.2 and model.ballots:   # a retry of a vote already cast
                    agent = rng.choice(sorted(model.ballots))
                    yes = model.ballots[agent]
                want = model.cast(agent, yes)
                casts += 1
                try:
                    got = conns[agent].vote(NS, name, "yes" if yes else "no")
                    outcome = "ok"
                    if got["status"] != model.status:
                        mismatches.append(f"{name}: status {got['status']}, model {model.status}")
                except Forbidden:
                    outcome = "FORBIDDEN"
                except Conflict:
                    outcome = "CONFLICT"
                if outcome != want:
                    mismatches.append(f"{name}: {agent} {'yes' if yes else 'no'} -> {outcome}, model {want}")
            if short and model.status == "open":
                expiring[name] = model
            elif model.status != "open":
                final = conns["v0"].vote_get(NS, name)
                if final["status"] != model.status or (final["token"] is not None) != (model.status == "accepted"):
                    mismatches.append(f"{name}: final {final['status']} token {final['token']}, model {model.status}")
        for name in expiring:  # rejected at their deadline
            if not wait_until(lambda: conns["v0"].vote_get(NS, name)["status"] != "open"):
                mismatches.append(f"{name}: still open long after its deadline")
            elif conns["v0"].vote_get(NS, name)["status"] != "rejected":
                mismatches.append(f"{name}: not rejected at its deadline")
        # Exactly one "decided" event per decided round.
        decided: Dict[str, int] = {}
        deadline = time.monotonic() + 10
        expected = SCHEDULES  # every round ends decided or is still open (counted below)
        still_open = 0
        for n in range(SCHEDULES):
            if conns["v0"].vote_get(NS, f"p{n}")["status"] == "open":
                still_open += 1
        expected -= still_open
        while sum(decided.values()) < expected and time.monotonic() < deadline:
            ev = watcher.next_notification(timeout=max(0.1, deadline - time.monotonic()))
            p = ev["params"]
            if p.get("watch_id") == watch["watch_id"] and p["kind"] == "decided":
                decided[p["key"]] = decided.get(p["key"], 0) + 1
        twice = {k: v for k, v in decided.items() if v != 1}
        assert not twice, f"decided more than once: {twice}"
        assert sum(decided.values()) == expected, f"{sum(decided.values())} decided events, {expected} decided rounds"
    finally:
        for c in conns.values():
            c.close()
        watcher.close()
    assert not mismatches, "\n".join(mismatches[:20])
    report.record("vote_schedules", runs=SCHEDULES, operations=casts, decided=expected, still_open=still_open)


def test_decision_token_fences_until_a_newer_decision(daemons):
    d = daemons("decisionfence")
    with d.client("a") as a, d.client("b") as b:
        a.vote_open(NS, "ship", voters=["a", "b"])
        a.vote(NS, "ship", "yes")
        token = b.vote(NS, "ship", "yes")["token"]
        fence = {"resource": "ship", "token": token}
        a.set(NS, "shipped", 1, fence=fence)
        a.vote_open(NS, "ship", voters=["a", "b"], quorum=1)
        a.set(NS, "shipped", 2, fence=fence)  # round 2 is open, undecided: round 1 holds
        newer = b.vote(NS, "ship", "yes")["token"]
        assert newer > token
        with pytest.raises(Fenced):
            a.set(NS, "shipped", 3, fence=fence)
        a.set(NS, "shipped", 3, fence={"resource": "ship", "token": newer})


LEADER = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
from mnemo_client import Client, Fenced
with Client(sys.argv[2], agent="leader-1", timeout=30) as c:
    r = c.campaign("agree/t", "sched", 600, value={"pid": 1})
    assert r["leader"], r
    print(r["token"], flush=True)
    while True:   # writes fenced by its token, until the fence refuses one
        try:
            c.set("agree/t", "leader-writes", time.time(), fence={"resource": "sched", "token": r["token"]})
        except Fenced:
            print("FENCED", flush=True)
            break
        time.sleep(0.05)
"""


def test_paused_leader_is_replaced_and_fenced(daemons, report):
    d = daemons("leader")
    p = subprocess.Popen([sys.executable, "-c", LEADER, str(REPO / "clients" / "python"), d.sock],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        token = int(p.stdout.readline())
        with d.client("observer") as o:   # paused once it has written under its token
            deadline = time.monotonic() + 30
            while not o.get(NS, "leader-writes")["found"]:
                assert time.monotonic() < deadline, "the leader never wrote"
                time.sleep(0.01)
        os.kill(p.pid, signal.SIGSTOP)   # paused past its 600 ms lease
        with d.client("leader-2") as c:
            took = c.campaign(NS, "sched", 60_000, wait_ms=5000)
            assert took["leader"] is True and took["token"] > token
            assert c.leader(NS, "sched")["leader"] == "leader-2"
        os.kill(p.pid, signal.SIGCONT)
        assert p.stdout.readline().strip() == "FENCED"
        p.wait(timeout=10)
    finally:
        if p.poll() is None:
            os.kill(p.pid, signal.SIGCONT)
            p.kill()
    report.record("leader_paused", runs=1, faults=1)
