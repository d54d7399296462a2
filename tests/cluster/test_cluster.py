"""Cluster mode: three mnemod nodes on one PostgreSQL keep one state, with the coordination
guarantees of a single node (issue 17's "done when")."""
from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List, Tuple

import pytest

from conftest import node_config
from harness import Daemon
from mnemo_client import Client
from mnemo_client.errors import MnemoError

NS = "wf/1"


def call_retrying(node, method: str, params: Dict[str, Any], agent: str = "agent", attempts: int = 200) -> Any:
    """Calls until the node answers something other than UNAVAILABLE (bounded)."""
    for _ in range(attempts):
        try:
            with node.client(agent) as c:
                return c.call(method, params)
        except MnemoError as e:
            if e.name != "UNAVAILABLE":
                raise
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{method} still UNAVAILABLE after {attempts} attempts")


def parked_calls(node) -> int:
    with node.client("probe") as probe:
        return probe.stats()["connections"]["waiting"]


def test_sixty_agents_race_for_one_claim_and_tokens_keep_increasing(cluster):
    c = cluster(3)
    barrier = threading.Barrier(60)

    def agent(i: int) -> Tuple[str, Any]:
        with c[i % 3].client(f"agent-{i}") as cl:
            barrier.wait()
            try:
                return "granted", cl.acquire(NS, "job", 60_000)
            except MnemoError as e:
                return e.name or str(e.code), None

    with ThreadPoolExecutor(60) as pool:
        outcomes = list(pool.map(agent, range(60)))
    granted = [r for kind, r in outcomes if kind == "granted"]
    assert len(granted) == 1, outcomes
    assert sorted(kind for kind, _ in outcomes) == ["CLAIMED"] * 59 + ["granted"]
    # Every node agrees on the holder.
    holders = set()
    for n in c.nodes:
        with n.client("probe") as probe:
            holders.add(probe.claims(NS, consistency="linearizable")["claims"][0]["holder"])
    assert len(holders) == 1

    tokens = [granted[0]["token"]]
    with c[0].client(holders.pop()) as holder:
        holder.release(NS, "job", tokens[0])
    for round_ in range(9):
        node = c[round_ % 3]
        if round_ == 4:
            node.kill9()
            node.start()
        with node.client(f"round-{round_}") as cl:
            r = cl.acquire(NS, "job", 60_000)
            tokens.append(r["token"])
            cl.release(NS, "job", r["token"])
    assert all(a < b for a, b in zip(tokens, tokens[1:])), tokens


def test_hundred_identical_result_puts_have_one_effect(cluster):
    c = cluster(3)

    def put(i: int) -> Dict[str, Any]:
        with c[i % 3].client(f"worker-{i % 7}") as cl:
            return cl.put_result(NS, "task-9", "idem-9", {"answer": 42, "by": "first"})

    with ThreadPoolExecutor(20) as pool:
        replies = list(pool.map(put, range(100)))
    assert sum(r["stored"] for r in replies) == 1
    first = next(r for r in replies if r["stored"])
    for r in replies:
        assert r["value"] == {"answer": 42, "by": "first"}
        assert r["provenance"] == first["provenance"]
    # A different value under the same key is refused on every node.
    for node in c.nodes:
        with node.client("late") as cl, pytest.raises(MnemoError) as e:
            cl.put_result(NS, "task-9", "idem-9", {"answer": 41})
        assert e.value.name == "IDEMPOTENCY_MISMATCH"


def test_sixteen_clients_count_exactly_with_cas_through_different_nodes(cluster):
    c = cluster(3)
    with c[0].client() as cl:
        cl.set(NS, "counter", 0)
    per_client = 20

    def incr(i: int) -> int:
        conflicts = 0
        with c[i % 3].client(f"counter-{i}") as cl:
            done = 0
            while done < per_client:
                cur = cl.get(NS, "counter")
                try:
                    cl.set(NS, "counter", cur["value"] + 1, if_version=cur["version"])
                    done += 1
                except MnemoError as e:
                    assert e.name == "CONFLICT", e
                    conflicts += 1
        return conflicts

    with ThreadPoolExecutor(16) as pool:
        conflicts = sum(pool.map(incr, range(16)))
    for node in c.nodes:
        with node.client() as cl:
            got = cl.call("wm.get", {"ns": NS, "key": "counter", "consistency": "linearizable"})
            assert got["value"] == 16 * per_client, (got, conflicts)


def test_a_watch_on_one_node_sees_the_other_nodes_writes_in_order_without_gaps(cluster):
    c = cluster(3)
    with c[0].client("watcher") as cl:
        start = cl.health()["rev"]
    revs: List[int] = []
    for i in range(40):
        with c[1 + i % 2].client("writer") as cl:
            revs.append(cl.set(NS, f"k{i}", i)["rev"])
    assert revs == list(range(start + 1, start + 41))
    seen: List[Tuple[int, str]] = []
    with Client(c[0].sock, agent="watcher", timeout=20) as cl:
        for ev in cl.watch(NS, from_rev=start + 1):
            seen.append((ev["rev"], ev["key"]))
            if len(seen) == 40:
                break
    assert seen == [(start + 1 + i, f"k{i}") for i in range(40)]


def test_min_rev_gives_read_after_write_across_nodes(cluster):
    c = cluster(3, extra="max_wait_ms = 300\n")
    with c[0].client("a") as a, c[1].client("b") as b:
        w = a.set(NS, "plan", {"step": 1})
        got = b.get(NS, "plan", min_rev=w["rev"])
        assert got["found"] and got["value"] == {"step": 1}
        a.transition(NS, "t1", "pending")
        t = a.call("task.get", {"ns": NS, "task": "t1"})
        got = b.call("task.get", {"ns": NS, "task": "t1", "min_rev": t["history"][-1]["provenance"]["rev"]})
        assert got["state"] == "pending"
        # A revision never reached: UNAVAILABLE after the bounded wait, with both revisions.
        with pytest.raises(MnemoError) as e:
            b.call("wm.get", {"ns": NS, "key": "plan", "min_rev": w["rev"] + 1000})
        assert e.value.name == "UNAVAILABLE" and e.value.data["min_rev"] == w["rev"] + 1000
        with pytest.raises(MnemoError) as e:
            b.call("wm.get", {"ns": NS, "key": "plan", "consistency": "eventual"})
        assert e.value.code == -32602


def test_semantic_and_episodic_writes_on_one_node_are_read_on_the_others_with_min_rev(cluster):
    c = cluster(3, extra="max_wait_ms = 5000\n")
    with c[0].client("a") as a, c[1].client("b") as b, c[2].client("c") as cc:
        fact = a.sem_upsert(NS, "the deploy key rotates every ninety days", tags=["ops"])
        hits = b.sem_search(NS, text="how often does the deploy key rotate", min_rev=fact["version"])["hits"]
        assert hits and hits[0]["id"] == fact["id"] and hits[0]["text"].endswith("ninety days")
        # Replaced on B: the new text on C (vector and keyword arms), the old one in its history.
        again = b.sem_upsert(NS, "the deploy key rotates every thirty days", id=fact["id"])
        got = cc.sem_get(NS, fact["id"], min_rev=again["version"])
        assert got["found"] and got["text"].endswith("thirty days") and got["version"] == again["version"]
        keyword = cc.sem_search(NS, text="thirty", mode="keyword")["hits"]
        assert [h["id"] for h in keyword] == [fact["id"]]
        assert cc.sem_search(NS, text="ninety", mode="keyword")["hits"] == []
        assert [v["version"] for v in cc.sem_history(NS, fact["id"])["versions"]] == [again["version"], fact["version"]]
        # Deleted on C: gone from A's matrix and index.
        gone = cc.sem_delete(NS, fact["id"])
        assert a.sem_get(NS, fact["id"], min_rev=gone["rev"])["found"] is False
        assert a.sem_search(NS, text="deploy key rotation")["hits"] == []
        assert a.stats()["semantic"]["records"] == 0

        # Episodic: an embedded record appended on A is found on B by words and by meaning.
        ep = a.ep_append(NS, "note", "agent a deployed build 42 to staging", tags=["deploy"], embed=True)
        found = b.ep_search(NS, "staging deploy", mode="keyword", min_rev=ep["rev"])["hits"]
        assert [h["id"] for h in found] == [ep["id"]]
        meaning = b.ep_search(NS, "which build went to the test environment", mode="vector")["hits"]
        assert meaning and meaning[0]["id"] == ep["id"]
        # An idempotent retry on another node replays the first append.
        key = a.ep_append(NS, "result", "done", idempotency_key="step-1")
        replay = cc.ep_append(NS, "result", "done", idempotency_key="step-1")
        assert replay == key
        pinned = cc.ep_pin([ep["id"]])
        rows = b.ep_query(NS, kind="note", min_rev=pinned["rev"])["records"]
        assert rows[0]["pinned"] is True
        # Pruned on B (all but the pinned one): the same records remain on every node.
        pruned = b.call("ep.prune", {"ns": NS, "policy": {"max_count": 0, "keep_summaries": False}})
        for node in (a, b, cc):
            left = node.ep_query(NS, min_rev=pruned["rev"])["records"]
            assert [r["id"] for r in left] == [ep["id"]], node
        assert a.stats()["episodic"]["records"] == 1 and a.stats()["episodic"]["vectors"] == 1


def test_a_node_that_was_down_catches_up_the_episodic_and_semantic_writes_it_missed(cluster):
    c = cluster(2, extra="snapshot_every = 20\nfeed_retain = 5\n")
    c[1].kill9()
    with c[0].client("a") as a:
        facts = [a.sem_upsert(NS, f"fact number {i} about the release train")["id"] for i in range(30)]
        eps = [a.ep_append(NS, "note", f"step {i} of the release went fine")["id"] for i in range(30)]
        for i in range(60):  # working-memory writes past the snapshot interval: the feed is trimmed
            a.set(NS, f"k{i}", i)
        rev = a.set(NS, "last", 1)["version"]
    deadline = time.monotonic() + 20
    while int(c.pg.psql("SELECT coalesce(max(rev), 0) FROM mnemo_snapshots", c.db)) < 100:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    kept = c.pg.psql("SELECT count(*) FILTER (WHERE keep), count(*) FILTER (WHERE NOT keep) FROM mnemo_changes", c.db)
    assert kept.strip().split("|")[0] == "60", kept  # the SQLite tiers' rows are never trimmed
    c[1].start()
    with c[1].client("b") as b:
        assert b.get(NS, "last", min_rev=rev)["found"]
        assert sorted(h["id"] for h in b.sem_search(NS, text="release train", k=50, mode="keyword")["hits"]) == sorted(facts)
        assert [r["id"] for r in b.ep_query(NS, limit=100, order="asc")["records"]] == eps
        assert b.stats()["semantic"]["records"] == 30 and b.stats()["episodic"]["records"] == 30
        b.sem_upsert(NS, "written after catching up")  # and it writes on from there
    # A node given a data directory written by a single node refuses to start (its copy
    # could not take the cluster's changes).
    c[1].kill9()
    os.makedirs(c[1].workdir + "-single")
    single = Daemon(c[1].workdir + "-single").start()
    with single.client() as s:
        s.sem_upsert(NS, "a fact of a single node")
    single.stop()
    node = Daemon(c[1].workdir + "-single", config=node_config(c.pg, c.db, "n9"))
    with pytest.raises(RuntimeError) as e:
        node.start(timeout=15)
    assert "exited with 69" in str(e.value) and "written outside the cluster" in str(e.value)


class Ledger:
    """Acknowledged writes (keys, every third an idempotent result, every sixth an
    episodic record), checked against every node afterwards."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.acked: Dict[str, Any] = {}
        self.failed = 0

    def run(self, nodes, worker: int, stop: threading.Event, count: int) -> None:
        i = 0
        while not stop.is_set() and i < count:
            node = nodes[(worker + i) % len(nodes)]
            key = f"w{worker}-{i}"
            try:
                with node.client(f"load-{worker}", timeout=10) as cl:
                    if i % 3 == 2:  # a mix: every third write an idempotent result,
                        cl.put_result(NS, key, key, {"i": i})
                        acked = -1
                    elif i % 3 == 1 and i % 2 == 1:  # every sixth an episodic record
                        acked = cl.ep_append(NS, "note", key, idempotency_key=key)["id"]
                    else:
                        acked = cl.set(NS, key, {"i": i})["version"]
                with self.lock:
                    self.acked[key] = acked
            except (MnemoError, OSError, TimeoutError, ConnectionError):
                with self.lock:
                    self.failed += 1
                time.sleep(0.01)
            i += 1

    def check(self, nodes) -> None:
        for node in nodes:
            with node.client("checker") as cl:
                records = {r["content"]: r["id"] for r in
                           cl.ep_query(NS, limit=1000, consistency="linearizable")["records"]}
                first = True
                for key, version in self.acked.items():
                    if isinstance(version, str):
                        assert records.get(key) == version, (node.sock, key, version)
                        continue
                    if version == -1:
                        # The stored result is the acknowledged one: a retry replays it.
                        again = cl.put_result(NS, key, key, {"i": int(key.split("-")[1])})
                        assert again["stored"] is False, (node.sock, key, again)
                        continue
                    params = {"ns": NS, "key": key}
                    if first:
                        params["consistency"] = "linearizable"
                        first = False
                    got = cl.call("wm.get", params)
                    assert got["found"] and got["version"] == version, (node.sock, key, got)


def run_load(nodes, ledger: Ledger, fault, workers: int = 6, count: int = 150) -> None:
    stop = threading.Event()
    threads = [threading.Thread(target=ledger.run, args=(nodes, w, stop, count)) for w in range(workers)]
    for t in threads:
        t.start()
    while len(ledger.acked) < workers * 10:
        time.sleep(0.01)
    fault()
    for t in threads:
        t.join(timeout=120)
    stop.set()


def test_kill9_of_a_node_under_load_loses_no_acknowledged_write(cluster):
    c = cluster(3)
    ledger = Ledger()

    def fault() -> None:
        c[1].kill9()
        c[1].start()

    run_load(c.nodes, ledger, fault)
    assert len(ledger.acked) > 600
    ledger.check(c.nodes)


def test_postgres_crash_under_load_loses_no_acknowledged_write_and_nodes_recover(cluster):
    c = cluster(3, extra="max_wait_ms = 10000\n")
    ledger = Ledger()
    run_load(c.nodes, ledger, c.pg.restart_immediate)
    # Every node writes again (bounded retries while it reconnects), then holds every
    # acknowledged write.
    for i, node in enumerate(c.nodes):
        call_retrying(node, "wm.set", {"ns": NS, "key": f"after-{i}", "value": i})
    ledger.check(c.nodes)


def test_local_reads_go_on_while_postgres_is_unreachable_and_say_how_stale(cluster, postgres):
    c = cluster(2, extra="poll_ms = 50\n")
    with c[0].client() as cl:
        cl.set(NS, "k", 1)
    # Make the cluster's database refuse new connections and end the current ones.
    postgres.psql(f"ALTER DATABASE {c.db} ALLOW_CONNECTIONS false")
    postgres.psql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{c.db}'")
    try:
        with c[1].client() as cl:
            deadline = time.monotonic() + 20
            while cl.health()["cluster"]["connected"]:
                assert time.monotonic() < deadline, "node never noticed"
                time.sleep(0.05)
            assert cl.call("wm.get", {"ns": NS, "key": "k", "min_rev": 0})["value"] == 1
            with pytest.raises(MnemoError) as e:
                cl.set(NS, "k", 2)
            assert e.value.name == "UNAVAILABLE"
            with pytest.raises(MnemoError) as e:
                cl.call("wm.get", {"ns": NS, "key": "k", "consistency": "linearizable"})
            assert e.value.name == "UNAVAILABLE"
            deadline = time.monotonic() + 10  # the tailer notices the refused connection
            while (cl.health()["cluster"]["connected"] or cl.health()["cluster"]["staleness_ms"] == 0) \
                    and time.monotonic() < deadline:
                time.sleep(0.01)
            health = cl.health()["cluster"]
            assert health["connected"] is False and health["staleness_ms"] > 0 and health["last_error"]
    finally:
        postgres.psql(f"ALTER DATABASE {c.db} ALLOW_CONNECTIONS true")
    call_retrying(c[1], "wm.set", {"ns": NS, "key": "k", "value": 3})
    with c[0].client() as cl:
        assert cl.call("wm.get", {"ns": NS, "key": "k", "consistency": "linearizable"})["value"] == 3


def test_a_node_paused_past_its_lease_comes_back_to_fenced_writes(cluster):
    c = cluster(2)
    with c[0].client("holder") as holder:
        token = holder.acquire(NS, "job", 1000)["token"]
        holder.set(NS, "out", "before", fence={"resource": "job", "token": token})
        os.kill(c[0].pid, signal.SIGSTOP)
        try:
            with c[1].client("taker") as taker:
                taken = taker.acquire(NS, "job", 60_000, wait_ms=10_000)
                assert taken["token"] > token
        finally:
            os.kill(c[0].pid, signal.SIGCONT)
        with pytest.raises(MnemoError) as e:
            holder.set(NS, "out", "after", fence={"resource": "job", "token": token})
        assert e.value.name == "FENCED"
    with c[1].client() as cl:
        assert cl.get(NS, "out")["value"] == "before"


def test_a_restarted_node_starts_from_the_latest_snapshot_and_the_feed_is_trimmed(cluster):
    c = cluster(2, extra="snapshot_every = 50\nfeed_retain = 10\n")
    with c[0].client("writer") as cl:
        for i in range(200):
            cl.set(NS, f"k{i}", i)
        token = cl.acquire(NS, "job", 600_000)["token"]
        cl.transition(NS, "t1", "pending")
    deadline = time.monotonic() + 20
    while True:  # the sweeper writes snapshots every 100 ms when due
        snap = int(c.pg.psql("SELECT coalesce(max(rev), 0) FROM mnemo_snapshots", c.db))
        oldest = int(c.pg.psql("SELECT coalesce(min(rev), 0) FROM mnemo_changes", c.db))
        if snap >= 100 and oldest > 1:
            break
        assert time.monotonic() < deadline, (snap, oldest)
        time.sleep(0.05)
    assert oldest <= snap - 10 + 1, "the retained tail is kept"
    c[1].kill9()
    c[1].start()
    with c[1].client("reader") as cl:
        for i in range(200):
            assert cl.get(NS, f"k{i}")["value"] == i
        assert cl.claims(NS)["claims"][0]["token"] == token
        assert cl.call("task.get", {"ns": NS, "task": "t1"})["state"] == "pending"
        cl.set(NS, "after", 1)  # and it writes on from there


def test_a_node_refuses_a_database_whose_schema_is_newer(cluster):
    c = cluster(1)
    c.pg.psql("UPDATE mnemo_meta SET value = '99' WHERE key = 'schema_version'", c.db)
    c[0].kill9()
    with pytest.raises(RuntimeError) as e:
        c[0].start(timeout=15)
    assert "exited with 69" in str(e.value) and "schema version 99" in str(e.value)


def test_a_claim_wait_on_one_node_wakes_on_a_release_on_another(cluster):
    c = cluster(2)
    with c[0].client("holder") as holder, c[1].client("waiter") as waiter:
        token = holder.acquire(NS, "job", 60_000)["token"]
        got: Dict[str, Any] = {}

        def wait() -> None:
            # The holder's lease outlasts the wait: only the release can end it in time.
            got["reply"] = waiter.acquire(NS, "job", 60_000, wait_ms=30_000)

        t = threading.Thread(target=wait)
        t.start()
        deadline = time.monotonic() + 20
        while parked_calls(c[1]) < 1:
            assert time.monotonic() < deadline, "the waiter never parked"
            time.sleep(0.02)
        holder.release(NS, "job", token)
        t.join(timeout=25)
        assert got["reply"]["granted"] is True and got["reply"]["token"] > token


def test_a_barrier_opens_across_nodes(cluster):
    c = cluster(3)
    replies: List[Any] = [None] * 3

    def arrive(i: int) -> None:
        with c[i].client(f"party-{i}") as cl:
            replies[i] = cl.arrive(NS, "gate", 3, value=i, wait_ms=20_000)

    threads = [threading.Thread(target=arrive, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert all(r is not None and r["state"] == "open" for r in replies), replies
    assert sorted(a["value"] for a in replies[0]["arrivals"]) == [0, 1, 2]


def test_a_write_never_waits_forever_for_a_counter_row_held_elsewhere(cluster):
    c = cluster(1, extra="txn_timeout_ms = 300\n")
    with c[0].client() as cl:
        cl.set(NS, "k", 1)
        # Another session holds the row for 3 s (as a node stopped inside its transaction would).
        holder = subprocess.Popen(["psql", "-h", c.pg.sock, "-U", "postgres", "-d", c.db, "-XAtqc",
                                   "BEGIN; SELECT rev FROM mnemo_counter FOR UPDATE; SELECT pg_sleep(3); COMMIT"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while int(c.pg.psql("SELECT count(*) FROM pg_locks l JOIN pg_class r ON r.oid = l.relation "
                                "WHERE r.relname = 'mnemo_counter' AND l.mode = 'RowShareLock'", c.db)) < 1:
                assert time.monotonic() < deadline, "the other session never locked the row"
                time.sleep(0.02)
            with pytest.raises(MnemoError) as e:
                cl.set(NS, "k", 2)
            assert e.value.name == "UNAVAILABLE" and "lock" in str(e.value)
        finally:
            holder.wait(timeout=10)
        assert cl.set(NS, "k", 3)["version"] > 1
        assert cl.get(NS, "k")["value"] == 3


def test_the_audit_log_is_the_clusters(cluster):
    c = cluster(2, extra="[audit]\nmutations = true\n")
    with c[0].client("auditor-a") as a, c[1].client("auditor-b") as b:
        a.set("audited/x", "k", 1)
        b.set("audited/x", "k", 2)
        with pytest.raises(MnemoError):
            b.set("audited/x", "k", 3, if_version=1)  # CONFLICT, audited as a failed mutation
        deadline = time.monotonic() + 20
        while True:  # each node's log is written in the background
            entries = a.call("audit.query", {"ns": "audited"})["entries"]
            if len(entries) >= 3:
                break
            assert time.monotonic() < deadline, entries
            time.sleep(0.05)
        assert [(e["agent"], e["method"], e["error"]) for e in entries] == [
            ("auditor-b", "wm.set", "CONFLICT"), ("auditor-b", "wm.set", None), ("auditor-a", "wm.set", None)]
        assert b.call("audit.query", {"ns": "audited", "agent": "auditor-a"})["entries"][0]["rev"] == entries[2]["rev"]
        assert b.call("audit.query", {"ns": "audited", "limit": 1})["entries"] == entries[:1]


def test_writes_whose_connection_is_cut_mid_transaction_never_leave_a_node_diverged(cluster):
    """A node's PostgreSQL sessions are ended again and again under a write load: some writes
    fail before anything was applied, some after the node applied them but before (or
    while) PostgreSQL committed them, when the node must rebuild its state from the feed.
    Every acknowledged write is there afterwards, and every node agrees with PostgreSQL."""
    c = cluster(2)
    ledger = Ledger()
    stop = threading.Event()
    cuts = 0

    cut_error: List[BaseException] = []

    def cut() -> None:
        # The load runs until 40 cuts were made while it ran (bounded by its count).
        nonlocal cuts
        try:
            while len(ledger.acked) < 20:
                time.sleep(0.01)
            while cuts < 40:
                c.pg.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          f"WHERE datname = '{c.db}' AND application_name = 'mnemod n0 writer'")
                cuts += 1
                time.sleep(0.02)
        except BaseException as e:  # reported by the test, not lost with the thread
            cut_error.append(e)
        finally:
            stop.set()

    cutter = threading.Thread(target=cut)
    threads = [threading.Thread(target=ledger.run, args=([c[0]], w, stop, 5000)) for w in range(4)]
    for t in threads + [cutter]:
        t.start()
    cutter.join(timeout=120)
    stop.set()
    for t in threads:
        t.join(timeout=120)
    assert not cut_error, cut_error
    assert ledger.failed > 0, f"no write was cut in {cuts} cuts: the test proved nothing"
    # The node serves again (it may be rebuilding), then holds every acknowledged write...
    call_retrying(c[0], "wm.set", {"ns": NS, "key": "after", "value": 1})
    ledger.check(c.nodes)
    # ...and both nodes hold exactly what PostgreSQL committed.
    snapshots = []
    for node in c.nodes:
        with node.client("compare") as cl:
            cl.call("wm.get", {"ns": NS, "key": "after", "consistency": "linearizable"})
            keys, cursor = [], None
            while True:
                page = cl.list(NS, limit=1000, cursor=cursor)
                keys += [(i["key"], i["version"]) for i in page["items"]]
                cursor = page.get("cursor")
                if not cursor:
                    break
            snapshots.append(keys)
    assert snapshots[0] == snapshots[1]
    with open(c[0].log_path) as f:
        resyncs = f.read().count("resynchronized from the change feed")
    print(f"\n[cluster] cuts={cuts} acked={len(ledger.acked)} failed={ledger.failed} resyncs={resyncs}")
