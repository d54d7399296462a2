"""Access matrix: several principals x every namespaced method x namespaces inside and
outside their grants, against a real mnemod configured with [[principals]].

Every decision is checked: an allowed call is never FORBIDDEN (it may fail for other
reasons, e.g. NOT_FOUND); a denied call is FORBIDDEN, its error does not depend on whether
the item exists, and it changes nothing (the global revision stays put). Prefix reads
(ep.query, sem.search, watch.subscribe) return only what the grants cover. Tokens and uids
are checked at session.hello, spoofed provenance is ignored, and SIGHUP swaps grants
without dropping connections. Denials land in the audit log.

Run with:  python3 -m pytest -q schemas/test_access_matrix.py
"""

import copy
import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from test_live_responses import EXAMPLES, Client, _binary

UID = os.getuid()


def sha(token):
    return hashlib.sha256(token.encode()).hexdigest()


def config(worker_perms_on_wf="r"):
    return f"""
[[principals]]
name = "ops"
token_sha256 = "{sha('ops-secret')}"
grants = [{{ ns = "**", perms = "rwa" }}]

[[principals]]
name = "planner"
token_sha256 = "{sha('planner-secret')}"
uids = [{UID}]
grants = [{{ ns = "wf/*", perms = "rw" }}, {{ ns = "agents/{{agent}}", perms = "rwa" }}]

[[principals]]
name = "worker"
token_sha256 = "{sha('worker-secret')}"
grants = [{{ ns = "wf/*", perms = "{worker_perms_on_wf}" }}, {{ ns = "scratch/{{agent}}/**", perms = "rw" }}]

[[principals]]
name = "elsewhere"
token_sha256 = "{sha('elsewhere-secret')}"
uids = [{UID + 4242}]
grants = [{{ ns = "**", perms = "rwa" }}]
"""


class Daemon:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="mnemo-access-")
        self.socket = os.path.join(self.dir, "m.sock")
        self.config = os.path.join(self.dir, "mnemod.toml")
        with open(self.config, "w") as f:
            f.write(config())
        self.proc = subprocess.Popen([_binary(), "--socket", self.socket, "--data-dir", os.path.join(self.dir, "data"),
                                      "--config", self.config, "--log-level", "warning"],
                                     stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(500):
            try:
                c = Client(self.socket)
                c.request("admin.health")
                c.close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("mnemod did not start")

    def connect(self, agent, token=None):
        c = Client(self.socket)
        c.say_hello(agent, **({"token": token} if token else {}))
        return c

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def daemon():
    d = Daemon()
    yield d
    d.stop()


# Namespaces, and what each principal may do there.
NAMESPACES = ["wf/42", "wf/42/tasks", "wf", "agents/planner", "agents/worker", "scratch/worker/x", "secret"]
GRANTS = {
    ("planner", "wf/42"): "rw", ("planner", "wf/42/tasks"): "rw", ("planner", "agents/planner"): "rwa",
    ("worker", "wf/42"): "r", ("worker", "wf/42/tasks"): "r", ("worker", "scratch/worker/x"): "rw",
}
# What each namespaced method needs.
NEEDS = {
    "wm.set": "w", "wm.get": "r", "wm.del": "w", "wm.list": "r", "wm.expire": "w", "wm.clear": "a", "wm.txn": "w",
    "claim.acquire": "w", "claim.renew": "w", "claim.release": "w", "claim.list": "r",
    "result.put": "w", "task.transition": "w", "task.get": "r",
    "inbox.post": "w", "inbox.read": "r", "inbox.ack": "w",
    "ep.append": "w", "ep.summarize": "a", "ep.prune": "a",
    "sem.upsert": "w", "sem.get": "r", "sem.history": "r", "sem.delete": "w",
    "barrier.arrive": "w", "barrier.get": "r", "barrier.list": "r",
    "vote.open": "w", "vote.cast": "w", "vote.get": "r",
    "leader.campaign": "w", "leader.get": "r", "leader.resign": "w",
}


def with_ns(params, ns):
    """An example's params with every `ns` replaced."""
    p = copy.deepcopy(params)

    def walk(x):
        if isinstance(x, dict):
            for k, v in x.items():
                if k == "ns" and isinstance(v, str):
                    x[k] = ns
                else:
                    walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)
    walk(p)
    if "ns" not in p and params.get("ns") is None and "ns" in str(params):
        pass
    return p


def params_for(method, ns):
    p = with_ns(EXAMPLES[method]["examples"][0]["params"], ns)
    if method == "ep.prune":
        p["ns"] = ns
        p["dry_run"] = True
    if method == "wm.clear":
        p = {"ns": ns}
    if method in ("claim.acquire", "barrier.arrive", "vote.get", "leader.campaign"):
        p.pop("wait_ms", None)
    if method == "vote.open":  # open to every agent that may write: a refused vote.cast is then the grants' doing
        p.pop("voters", None)
        p["quorum"] = 2
    return p


def rev(c):
    return c.call("admin.health")["rev"]


def test_hello_checks_token_and_uid(daemon):
    c = Client(daemon.socket)
    c.fail("session.hello", {"agent": "x", "token": "wrong"}, -32000, "UNAUTHENTICATED")
    c = Client(daemon.socket)
    c.fail("session.hello", {"agent": "x"}, -32000, "UNAUTHENTICATED")  # every principal needs a token here
    c = Client(daemon.socket)
    # The right token, but from a uid the principal does not allow.
    c.fail("session.hello", {"agent": "x", "token": "elsewhere-secret"}, -32000, "UNAUTHENTICATED")
    c.fail("wm.get", {"ns": "wf/42", "key": "k"}, -32000, "UNAUTHENTICATED")
    h = daemon.connect("planner", "planner-secret").hello
    assert h["principal"] == "planner"
    assert h["grants"] == [{"ns": "wf/*", "perms": "rw"}, {"ns": "agents/planner", "perms": "rwa"}]


def test_matrix(daemon):
    ops = daemon.connect("ops", "ops-secret")
    for ns in NAMESPACES:  # something to find in every namespace
        ops.call("wm.set", {"ns": ns, "key": "k", "value": 1})
    decisions = 0
    for principal in ["planner", "worker"]:
        c = daemon.connect(principal, f"{principal}-secret")
        for ns in NAMESPACES:
            perms = GRANTS.get((principal, ns), "")
            for method, need in NEEDS.items():
                params = params_for(method, ns)
                before = rev(ops)
                response = c.request(method, params, check_params=False)
                err = response.get("error", {})
                forbidden = err.get("data", {}).get("code") == "FORBIDDEN"
                if need in perms:
                    assert not forbidden, f"{principal} {method} on {ns} was refused: {err}"
                else:
                    assert forbidden, f"{principal} {method} on {ns} was not refused: {response}"
                    assert rev(ops) == before, f"a denied {method} changed something"
                    # The same call on an item that does not exist gets the same answer.
                    other = with_ns(params, ns)
                    for k in ("key", "id", "resource", "task"):
                        if k in other:
                            other[k] = "does-not-exist"
                    again = c.request(method, other, check_params=False)["error"]
                    assert again["message"] == err["message"] and again["data"] == err["data"]
                decisions += 1
        c.close()
    assert decisions == 2 * len(NAMESPACES) * len(NEEDS)


def test_global_admin_methods(daemon):
    worker = daemon.connect("worker", "worker-secret")
    worker.fail("admin.stats", {}, -32000, "FORBIDDEN")
    worker.fail("audit.query", {}, -32000, "FORBIDDEN")
    planner = daemon.connect("planner", "planner-secret")
    planner.fail("admin.stats", {}, -32000, "FORBIDDEN")
    # The planner administers agents/planner only: it sees the audit entries there.
    planner.call("wm.set", {"ns": "agents/planner", "key": "note", "value": 1})
    for _ in range(100):
        entries = planner.call("audit.query", {})["entries"]
        if entries:
            break
        time.sleep(0.02)
    assert entries and all(e["ns"] == "agents/planner" for e in entries)
    assert daemon.connect("ops", "ops-secret").call("admin.stats")["rev"] > 0
    # Export needs admin on what it exports, import on every record's namespace, snapshot
    # on everything.
    out = "planner.jsonl"
    exported = planner.call("admin.export", {"ns": "agents/planner", "path": out})
    assert exported["path"] == out
    planner.fail("admin.export", {"ns": "wf", "path": "other.jsonl"}, -32000, "FORBIDDEN")
    planner.fail("admin.export", {"path": "other.jsonl"}, -32000, "FORBIDDEN")
    records = exported["lines"] - 1
    assert records >= 1
    assert planner.call("admin.import", {"path": out}) == {"imported": 0, "skipped": records, "counts": {}}
    planner.fail("admin.import", {"path": out, "remap": [{"from": "agents/planner", "to": "wf/1"}]}, -32000, "FORBIDDEN")
    planner.fail("admin.snapshot", {"path": "snap"}, -32000, "FORBIDDEN")
    worker.fail("admin.export", {"ns": "wf/42", "path": "other.jsonl"}, -32000, "FORBIDDEN")
    worker.fail("admin.import", {"path": out}, -32000, "FORBIDDEN")
    assert not os.path.exists(os.path.join(daemon.dir, "data", "transfer", "other.jsonl"))


def test_prefix_reads_show_only_granted_namespaces(daemon):
    ops = daemon.connect("ops", "ops-secret")
    for ns in ["wf/7", "wf/7/sub", "wf", "secret/x"]:
        ops.call("ep.append", {"ns": ns, "kind": "note", "content": "hello world"})
        ops.call("sem.upsert", {"ns": ns, "text": "hello", "vector": [1.0, 0.5]})
    worker = daemon.connect("worker", "worker-secret")
    recs = worker.call("ep.query", {"ns": "wf", "limit": 1})
    seen = [r["ns"] for r in recs["records"]]
    while "cursor" in recs:
        recs = worker.call("ep.query", {"ns": "wf", "limit": 1, "cursor": recs["cursor"]})
        seen += [r["ns"] for r in recs["records"]]
    # "wf" itself is outside wf/*; wf/42 holds records the matrix test appended.
    assert {"wf/7", "wf/7/sub"} <= set(seen) and not set(seen) & {"wf", "secret/x"}
    assert all(ns.startswith("wf/") for ns in seen)
    # ep.search covers the prefix and leaves out what the grants do not cover, in every mode.
    for mode in ["keyword", "vector", "hybrid"]:
        hits = worker.call("ep.search", {"ns": "wf", "text": "hello world", "limit": 100, "mode": mode})["hits"]
        assert all(h["ns"].startswith("wf/") for h in hits), mode
        if mode == "keyword":
            assert {"wf/7", "wf/7/sub"} <= {h["ns"] for h in hits}
    assert worker.call("ep.search", {"ns": "secret", "text": "hello"})["hits"] == []
    hits = worker.call("sem.search", {"ns": "wf", "vector": [1.0, 0.5], "k": 10})["hits"]
    assert sorted(h["ns"] for h in hits if h["ns"].startswith("wf/7")) == ["wf/7", "wf/7/sub"]
    assert all(h["ns"].startswith("wf/") for h in hits)
    assert daemon.connect("planner", "planner-secret").call("sem.search", {"ns": "secret", "vector": [1.0, 0.5]})["hits"] == []

    sub = worker.call("watch.subscribe", {"ns": "wf"})
    ops.call("wm.set", {"ns": "wf", "key": "hidden", "value": 1})
    ops.call("wm.set", {"ns": "wf/7", "key": "shown", "value": 1})
    worker.wait_events(lambda ev: len(ev) >= 1)
    time.sleep(0.2)
    worker.call("watch.cancel", {"watch_id": sub["watch_id"]})
    assert [(e["params"]["ns"], e["params"]["key"]) for e in worker.events] == [("wf/7", "shown")]


def test_spoofed_provenance_is_ignored(daemon):
    c = daemon.connect("planner", "planner-secret")
    c.fail("wm.set", {"ns": "wf/1", "key": "k", "value": 1, "provenance": {"agent": "ops"}}, -32602,
           check_params=False)
    c.fail("wm.set", {"ns": "wf/1", "key": "k", "value": 1, "agent": "ops"}, -32602, check_params=False)
    c.call("wm.set", {"ns": "wf/1", "key": "k", "value": 1})
    p = c.call("wm.get", {"ns": "wf/1", "key": "k"})["provenance"]
    assert p["agent"] == "planner" and p["principal"] == "planner" and p["uid"] == UID


def test_denials_are_audited(daemon):
    c = daemon.connect("worker", "worker-secret")
    c.fail("wm.set", {"ns": "secret", "key": "k", "value": 1}, -32000, "FORBIDDEN")
    ops = daemon.connect("ops", "ops-secret")
    for _ in range(100):
        entries = ops.call("audit.query", {"ns": "secret", "agent": "worker"})["entries"]
        if any(not e["allowed"] for e in entries):
            break
        time.sleep(0.02)
    denied = [e for e in entries if not e["allowed"]]
    assert denied and denied[0]["error"] == "FORBIDDEN" and denied[0]["principal"] == "worker"
    assert denied[0]["method"] == "wm.set" and denied[0]["rev"] is None


def test_sighup_reloads_grants_without_dropping_connections(daemon):
    worker = daemon.connect("worker", "worker-secret")
    worker.fail("wm.set", {"ns": "wf/9", "key": "k", "value": 1}, -32000, "FORBIDDEN")
    with open(daemon.config, "w") as f:
        f.write(config(worker_perms_on_wf="rw"))
    daemon.proc.send_signal(signal.SIGHUP)
    for _ in range(200):
        r = worker.request("wm.set", {"ns": "wf/9", "key": "k", "value": 1})
        if "result" in r:
            break
        time.sleep(0.02)
    assert "result" in r, r
    with open(daemon.config, "w") as f:
        f.write(config())
    daemon.proc.send_signal(signal.SIGHUP)
