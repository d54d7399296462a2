import asyncio
import json
import socket
import threading
import time
import uuid

import pytest

import mnemo_client
from mnemo_client import (
    Claimed,
    Client,
    Conflict,
    ConnectionLost,
    Fenced,
    IdempotencyMismatch,
    InvalidParams,
    InvalidTransition,
    MethodNotFound,
    MnemoError,
    NotFound,
    Unauthenticated,
    error_from_response,
)
from mnemo_client.aio import AsyncClient


def ns() -> str:
    return "t/" + uuid.uuid4().hex[:12]


def test_error_factory_unit():
    e = error_from_response({"jsonrpc": "2.0", "id": 1, "error": {
        "code": -32000, "message": "x", "data": {"code": "CLAIMED", "holder": "a"}}})
    assert isinstance(e, Claimed) and e.code == -32000 and e.name == "CLAIMED" and e.data["holder"] == "a"
    e = error_from_response({"code": -32602, "message": "bad", "data": {"field": "f"}})
    assert isinstance(e, InvalidParams) and e.name is None and e.message == "bad"
    e = error_from_response({"code": -32000, "message": "?", "data": {"code": "NEW_THING"}})
    assert type(e) is mnemo_client.ApplicationError and e.name == "NEW_THING"


def test_default_socket_path(monkeypatch):
    monkeypatch.setenv("MNEMO_SOCKET", "/x/y.sock")
    assert mnemo_client.default_socket_path() == "/x/y.sock"
    monkeypatch.delenv("MNEMO_SOCKET")
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/7")
    assert mnemo_client.default_socket_path() == "/run/user/7/mnemo/mnemo.sock"
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert mnemo_client.default_socket_path() == "./mnemo.sock"


def test_hello_set_get_cas(client):
    n = ns()
    assert client.session["agent"] == "tester" and client.session["server"]["protocol"] == 1
    r = client.set(n, "k", {"steps": 3})
    assert r["version"] == r["rev"]
    g = client.get(n, "k")
    assert g["found"] and g["value"] == {"steps": 3} and g["version"] == r["version"]
    assert g["provenance"]["agent"] == "tester"
    r2 = client.set(n, "k", [1], if_version=r["version"])
    with pytest.raises(Conflict) as ei:
        client.set(n, "k", [2], if_version=r["version"])
    assert ei.value.data["version"] == r2["version"] and ei.value.name == "CONFLICT"
    with pytest.raises(Conflict):
        client.set(n, "k", 1, if_absent=True)
    assert client.get(n, "missing") == {"found": False}
    assert [i["key"] for i in client.list(n)["items"]] == ["k"]
    assert client.expire(n, "k", 60000)["found"] is True
    assert client.delete(n, "k")["deleted"] is True
    t = client.txn([{"op": "set", "ns": n, "key": "a", "value": 1}, {"op": "set", "ns": n, "key": "b", "value": 2}],
                   compare=[{"ns": n, "key": "a", "absent": True}])
    assert len(t["results"]) == 2
    assert client.clear(n)["deleted"] == 2
    assert client.call("admin.health")["status"] == "ok"
    assert "uptime_ms" in client.health() and isinstance(client.stats(), dict)


def test_pipeline_order_and_error_in_middle(client):
    n = ns()
    calls = [("wm.set", {"ns": n, "key": f"k{i}", "value": i}) for i in range(100)]
    calls += [("wm.get", {"ns": n, "key": f"k{i}"}) for i in range(100)]
    results = client.pipeline(calls)
    assert len(results) == 200
    versions = [r["version"] for r in results[:100]]
    assert versions == sorted(versions)
    assert [r["value"] for r in results[100:]] == list(range(100))

    mixed = client.pipeline([
        ("wm.get", {"ns": n, "key": "k1"}),
        ("wm.set", {"ns": n, "key": "k2", "value": 0, "if_version": 1}),
        ("no.such", {}),
        ("wm.get", {"ns": n, "key": "k3"}),
    ])
    assert mixed[0]["value"] == 1
    assert isinstance(mixed[1], Conflict)
    assert isinstance(mixed[2], MethodNotFound)
    assert mixed[3]["value"] == 3
    assert client.get(n, "k4")["value"] == 4  # the connection goes on


def test_typed_errors(mnemod, client):
    raw = socket.socket(socket.AF_UNIX)
    raw.connect(mnemod)
    raw.sendall(b'{"jsonrpc":"2.0","id":1,"method":"wm.get","params":{"ns":"a","key":"b"}}\n')
    line = raw.makefile("rb").readline()
    raw.close()
    err = error_from_response(json.loads(line))
    assert isinstance(err, Unauthenticated) and err.code == -32000

    with pytest.raises(InvalidParams) as ei:
        client.call("wm.set", ns="a", key="b", value=1, bogus=True)
    assert ei.value.data["field"] == "bogus" and ei.value.code == -32602
    with pytest.raises(MethodNotFound) as ei2:
        client.call("nope.nothing")
    assert ei2.value.code == -32601
    with pytest.raises(NotFound):
        client.task(ns(), "never")


def test_claim_context_manager(mnemod, client):
    n = ns()
    with Client(mnemod, agent="other", timeout=10) as other:
        with client.claim(n, "job", ttl_ms=300) as cl:
            assert isinstance(cl.token, int) and cl.fence == {"resource": "job", "token": cl.token}
            client.set(n, "out", 1, fence=cl.fence)
            time.sleep(0.8)  # > 2x ttl: only renewal keeps it alive
            assert cl.renewals >= 2 and not cl.lost
            with pytest.raises(Claimed) as ei:
                other.acquire(n, "job", 1000)
            assert ei.value.data["holder"] == "tester"
            [c] = client.claims(n)["claims"]
            assert c["token"] == cl.token
            stale = cl.token
        assert cl.released is True
        assert client.claims(n)["claims"] == []
        got = other.acquire(n, "job", 5000)
        assert got["token"] > stale
        with pytest.raises(Fenced):
            client.set(n, "out", 2, fence={"resource": "job", "token": stale})
        other.release(n, "job", got["token"])


def test_claim_waits(mnemod, client):
    n = ns()
    held = client.acquire(n, "r", 5000)
    threading.Timer(0.2, lambda: client.release(n, "r", held["token"])).start()
    with Client(mnemod, agent="waiter", timeout=10) as w:
        with w.claim(n, "r", ttl_ms=2000, wait_ms=3000) as cl:
            assert cl.token > held["token"]


def test_result_put_replay(client):
    n = ns()
    first = client.put_result(n, "t1", "idem-1", {"answer": 42})
    assert first["stored"] is True
    again = client.put_result(n, "t1", "idem-1", {"answer": 42})
    assert again["stored"] is False and again["value"] == {"answer": 42}
    assert again["provenance"] == first["provenance"]
    with pytest.raises(IdempotencyMismatch):
        client.put_result(n, "t1", "idem-1", {"answer": 43})


def test_task_transitions(client):
    n = ns()
    assert client.transition(n, "t", "pending")["state"] == "pending"
    client.transition(n, "t", "claimed", from_="pending")
    client.transition(n, "t", "running")
    client.transition(n, "t", "succeeded")
    with pytest.raises(InvalidTransition):
        client.transition(n, "t", "running")
    t = client.task(n, "t")
    assert t["state"] == "succeeded" and [h["to"] for h in t["history"]] == ["pending", "claimed", "running", "succeeded"]
    client.transition(n, "u", "pending")
    with pytest.raises(Conflict):
        client.transition(n, "u", "cancelled", from_="running")


def test_inbox_between_two_clients(mnemod, client):
    n = ns()
    with Client(mnemod, agent="reviewer", timeout=10) as reviewer:
        posted = client.post(n, "reviewer", "review-request", {"pr": 7})
        entries = reviewer.read_inbox(n)["entries"]
        assert [e["id"] for e in entries] == [posted["id"]]
        assert entries[0]["from"] == "tester" and entries[0]["content"] == {"pr": 7}
        assert client.read_inbox(n)["entries"] == []
        assert reviewer.ack(n, [posted["id"]])["acked"] == 1
        assert reviewer.read_inbox(n)["entries"] == []
        assert reviewer.read_inbox(n, unacked_only=False)["entries"][0]["acked"] is True


def test_watch_iterator(client):
    n = ns()
    with client.watch(n, tiers=["wm"]) as w:
        client.set(n, "a", 1)
        client.delete(n, "a")
        e1 = w.next(timeout=5)
        e2 = w.next(timeout=5)
        assert (e1["kind"], e1["key"], e1["watch_id"]) == ("set", "a", w.watch_id)
        assert (e2["kind"], e2["key"]) == ("del", "a") and e2["rev"] > e1["rev"]
        with pytest.raises(TimeoutError):
            w.next(timeout=0.1)
    # from_rev replays, and cancel from another thread ends a blocked iteration
    w2 = client.watch(n, from_rev=e1["rev"])
    got = []

    def consume():
        for ev in w2:
            got.append(ev)

    th = threading.Thread(target=consume)
    th.start()
    deadline = time.monotonic() + 10
    while len(got) < 2 and time.monotonic() < deadline:  # both replayed; the iteration then blocks
        time.sleep(0.01)
    w2.cancel()
    th.join(5)
    assert not th.is_alive()
    assert [e["kind"] for e in got] == ["set", "del"]


def test_notifications_queued_while_waiting(client):
    n = ns()
    sub = client.call("watch.subscribe", ns=n)
    client.set(n, "x", 1)  # the event may arrive before or after this reply
    client.health()
    ev = client.next_notification(timeout=5)
    assert ev["params"]["watch_id"] == sub["watch_id"] and ev["params"]["key"] == "x"
    assert client.call("watch.cancel", watch_id=sub["watch_id"])["cancelled"] is True


def test_reconnect_before_send(mnemod, client):
    # Simulate a dropped connection: the next call reconnects (new socket + hello).
    client._sock.shutdown(socket.SHUT_RDWR)
    assert client.health()["status"] == "ok"


def test_call_after_close_raises(mnemod):
    c = Client(mnemod)
    c.close()
    with pytest.raises(ConnectionLost):
        c.health()
    with pytest.raises(MnemoError):
        c.get("a", "b")


def test_concurrent_threads_share_client(client):
    n = ns()
    errors = []

    def worker(i):
        try:
            for j in range(20):
                client.set(n, f"{i}-{j}", j)
                assert client.get(n, f"{i}-{j}")["value"] == j
        except Exception as e:  # pragma: no cover
            errors.append(e)

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    assert not errors
    assert len(client.list(n, limit=1000)["items"]) == 160


def test_async_client(mnemod):
    async def main():
        n = ns()
        async with AsyncClient(mnemod, agent="aio", timeout=10) as c:
            assert c.session["agent"] == "aio"
            await c.set(n, "k", "v")
            results = await asyncio.gather(*[c.get(n, "k") for _ in range(100)])
            assert len(results) == 100 and all(r["value"] == "v" for r in results)
            with pytest.raises(Conflict):
                await c.set(n, "k", 1, if_absent=True)
            pipe = await c.pipeline([("wm.get", {"ns": n, "key": "k"}), ("bad.method", None), ("admin.health", {})])
            assert pipe[0]["value"] == "v" and isinstance(pipe[1], MethodNotFound) and pipe[2]["status"] == "ok"

            watch = c.watch(n, prefix="w")
            await watch.start()
            for i in range(3):
                await c.set(n, f"w{i}", i)
            await c.set(n, "other", 0)  # filtered out by prefix
            await c.delete(n, "w0")
            seen = []
            async for ev in watch:
                seen.append((ev["kind"], ev["key"]))
                if len(seen) == 4:
                    await watch.cancel()
            assert seen == [("set", "w0"), ("set", "w1"), ("set", "w2"), ("del", "w0")]
        with pytest.raises(ConnectionLost):
            await c.health()

    asyncio.run(asyncio.wait_for(main(), 15))


def test_large_pipeline_does_not_stall(client):
    # ~24 MB each way: the server answers (and then stops reading) while we still send.
    n = ns()
    big = "x" * 200_000
    calls = []
    for i in range(60):
        calls.append(("wm.set", {"ns": n, "key": f"b{i}", "value": big}))
        calls.append(("wm.get", {"ns": n, "key": f"b{i}"}))
    results = client.pipeline(calls)
    assert len(results) == 120
    assert all(len(r["value"]) == 200_000 for r in results[1::2])


def test_episodic_jobs_and_administration(mnemod: str) -> None:
    """ep.summarize, ep.pin, audit.query, admin.export/import/snapshot/check through the client."""
    with Client(mnemod, agent="admin-py") as c:
        for i in range(3):
            c.ep_append("py/admin", "step", f"step {i} of the migration")
        first = c.ep_query("py/admin")["records"][0]
        assert c.ep_pin([first["id"]])["updated"] == 1
        done = c.ep_summarize("py/admin")
        assert done["summarized"] >= 2 and len(done["summaries"]) == 1
        c.set("py/admin", "plan", {"steps": 3})
        name = f"py-export-{uuid.uuid4().hex[:8]}.jsonl"
        exported = c.export_file(name, ns="py/admin")
        assert exported["lines"] >= 2
        again = c.import_file(name)
        assert again["imported"] == 0 and again["skipped"] >= 1  # idempotent by id
        # Remapped into this same daemon: the key is copied (episodic ids are global: skipped).
        copy = c.import_file(name, remap=[{"from": "py/admin", "to": "py/admin-copy"}])
        assert copy["imported"] == 1 and c.get("py/admin-copy", "plan")["value"] == {"steps": 3}
        assert c.snapshot(f"py-snap-{uuid.uuid4().hex[:8]}")["path"]
        assert c.check()["status"] == "sound"
        assert "entries" in c.audit_query(limit=5)
