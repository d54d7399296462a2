"""Semantic and episodic convenience methods, retrieval modes and dedupe.

What the running daemon cannot do yet (a ``mode`` or ``dedupe: "report"`` it does not know is
-32602 naming that field) is probed once per daemon and skipped with the reason.
"""
import asyncio
import uuid
from typing import Any, Dict, List, Optional, Tuple

import pytest

from mnemo_client import Client, InvalidParams
from mnemo_client._api import ApiMixin
from mnemo_client.aio import AsyncClient

MODES = ("vector", "keyword", "hybrid")


def ns(root: str = "t") -> str:
    return f"{root}/{uuid.uuid4().hex[:12]}"


class Recorder(ApiMixin):
    """An ApiMixin that records what it would send."""

    def __init__(self) -> None:
        self.sent: List[Tuple[str, Dict[str, Any]]] = []

    def _invoke(self, method: str, params: Dict[str, Any]) -> Any:
        self.sent.append((method, params))
        return {"ok": True}


def unsupported(c: Client, method: str, params: Dict[str, Any], field: str) -> Optional[str]:
    """The reason to skip when the daemon refuses ``field`` as an unknown or invalid parameter."""
    try:
        c.call(method, params)
    except InvalidParams as e:
        if (e.data or {}).get("field") == field:
            server = c.session.get("server", {})
            return f"mnemod {server.get('version', '?')} does not support {method} {field!r} yet: {e.message}"
        raise
    return None


@pytest.fixture(scope="module")
def features(mnemod: str) -> Dict[str, Optional[str]]:
    """For each feature, None if the daemon has it, else why not."""
    with Client(mnemod, agent="probe", timeout=10) as c:
        probe = ns("probe")
        return {
            "sem.mode": unsupported(c, "sem.search", {"ns": probe, "text": "probe", "mode": "keyword"}, "mode"),
            "ep.mode": unsupported(c, "ep.search", {"ns": probe, "text": "probe", "mode": "keyword"}, "mode"),
            "dedupe.report": unsupported(c, "sem.upsert", {"ns": probe, "text": "probe words",
                                                           "dedupe": "report"}, "dedupe"),
            "ep.embed": unsupported(c, "ep.append", {"ns": probe, "kind": "probe", "content": "probe",
                                                     "embed": True}, "embed"),
        }


def need(features: Dict[str, Optional[str]], name: str) -> None:
    if features[name] is not None:
        pytest.skip(features[name])


# -- what the methods send (no daemon) ---------------------------------------------------------------
def test_methods_send_contract_params() -> None:
    r = Recorder()
    r.sem_search("kb", "when is staging reset?", k=3, mode="hybrid", filter={"tags": ["ops"]})
    r.search("kb", "x")
    r.sem_search("kb", vector=(0.5, 0.5), min_score=0.1, include_superseded=True)
    r.sem_upsert("kb/ops", "The staging database is reset every night", tags=("ops",), dedupe="report")
    r.sem_upsert("kb/ops", "t", id="f-1", data={"a": 1}, ttl_ms=5, supersedes="f-0", confidence=0.5)
    r.ep_search("runs", "deploy failed", limit=5, mode="vector")
    r.ep_search("runs", "deploy failed")
    r.sem_search("kb", "x", mode="hybrid", fusion="rrf")
    r.ep_search("runs", "x", fusion="minmax")
    r.ep_append("runs/1", "tool", "deploy failed", tags=["x"], embed=True)
    r.ep_query("runs/1", kind="tool", limit=2, order="desc")
    r.sem_get("kb/ops", "f-1")
    r.sem_delete("kb/ops", "f-1")
    assert r.sent == [
        ("sem.search", {"ns": "kb", "text": "when is staging reset?", "k": 3, "mode": "hybrid",
                        "filter": {"tags": ["ops"]}}),
        ("sem.search", {"ns": "kb", "text": "x"}),  # no mode: the server's default
        ("sem.search", {"ns": "kb", "vector": [0.5, 0.5], "min_score": 0.1, "include_superseded": True}),
        ("sem.upsert", {"ns": "kb/ops", "text": "The staging database is reset every night", "tags": ["ops"],
                        "dedupe": "report"}),
        ("sem.upsert", {"ns": "kb/ops", "text": "t", "id": "f-1", "data": {"a": 1}, "confidence": 0.5,
                        "supersedes": "f-0", "ttl_ms": 5}),
        ("ep.search", {"ns": "runs", "text": "deploy failed", "limit": 5, "mode": "vector"}),
        ("ep.search", {"ns": "runs", "text": "deploy failed"}),
        ("sem.search", {"ns": "kb", "text": "x", "mode": "hybrid", "fusion": "rrf"}),
        ("ep.search", {"ns": "runs", "text": "x", "fusion": "minmax"}),
        ("ep.append", {"ns": "runs/1", "kind": "tool", "content": "deploy failed", "tags": ["x"], "embed": True}),
        ("ep.query", {"ns": "runs/1", "kind": "tool", "limit": 2, "order": "desc"}),
        ("sem.get", {"ns": "kb/ops", "id": "f-1"}),
        ("sem.delete", {"ns": "kb/ops", "id": "f-1"}),
    ]


# -- against today's daemon ------------------------------------------------------------------------
def test_sem_methods_roundtrip(client: Client) -> None:
    root = ns("kb")
    a = client.sem_upsert(root + "/ops", "The staging database is reset every night", tags=["ops"])
    client.sem_upsert(root + "/users", "Ada prefers answers in French", tags=["pref"])
    hits = client.sem_search(root, "staging database reset", k=2)["hits"]
    assert hits[0]["id"] == a["id"] and hits[0]["ns"] == root + "/ops"
    assert client.search(root, "answers in French", k=1)["hits"][0]["ns"] == root + "/users"
    assert client.sem_get(root + "/ops", a["id"])["found"]
    client.sem_delete(root + "/ops", a["id"])
    assert not client.sem_get(root + "/ops", a["id"])["found"]


def test_ep_methods_roundtrip(client: Client) -> None:
    root = ns("runs")
    client.ep_append(root + "/a", "tool", "deploy of api-gateway failed: quota exceeded")
    client.ep_append(root + "/b", "tool", "unit tests passed on the first try")
    assert [r["content"] for r in client.ep_query(root + "/a")["records"]] == [
        "deploy of api-gateway failed: quota exceeded"]
    hits = client.ep_search(root + "/a", "quota", limit=5)["hits"]
    assert [h["content"] for h in hits] == ["deploy of api-gateway failed: quota exceeded"]


def test_unknown_mode_is_refused_with_its_field(client: Client) -> None:
    # Old daemons refuse the parameter itself, new ones the value: either way `mode` is named.
    with pytest.raises(InvalidParams) as e:
        client.sem_search(ns("kb"), "x", mode="telepathy")
    assert e.value.data["field"] == "mode"


def test_sem_search_modes(client: Client, features: Dict[str, Optional[str]]) -> None:
    need(features, "sem.mode")
    root = ns("kb")
    facts = {
        "pg": "The staging Postgres database is wiped and reseeded every night at 02:00 UTC",
        "fr": "Ada prefers answers in French, short and without emoji",
        "k8s": "Deployments to the prod cluster need an approval from the on-call SRE",
    }
    ids = {k: client.sem_upsert(root + "/ops", t)["id"] for k, t in facts.items()}
    for mode in MODES:
        res = client.sem_search(root, "staging Postgres reseeded", k=3, mode=mode)
        hits = res["hits"]
        assert hits and hits[0]["id"] == ids["pg"], (mode, hits)
        match = hits[0].get("match")
        assert isinstance(match, dict), (mode, hits[0])
        if mode == "vector":
            assert "vector" in match and "keyword" not in match
        elif mode == "keyword":
            assert "keyword" in match and "vector" not in match
            assert {h["id"] for h in hits} == {ids["pg"]}  # no other fact shares a word
        else:
            assert "fused" in match and ("vector" in match or "keyword" in match)
        for part in ("vector", "keyword"):
            if part in match:
                assert match[part]["rank"] >= 1 and isinstance(match[part]["score"], (int, float))


def test_sem_search_mode_async(mnemod: str, features: Dict[str, Optional[str]]) -> None:
    need(features, "sem.mode")
    root = ns("kb")

    async def main() -> List[Any]:
        async with AsyncClient(mnemod, agent="aio", timeout=10) as c:
            await c.sem_upsert(root + "/x", "the release train leaves every Thursday")
            return await asyncio.gather(*[c.sem_search(root, "release train Thursday", k=1, mode=m) for m in MODES])

    for res in asyncio.run(main()):
        assert res["hits"][0]["text"] == "the release train leaves every Thursday"
        assert "match" in res["hits"][0]


def test_ep_search_modes(client: Client, features: Dict[str, Optional[str]]) -> None:
    need(features, "ep.mode")
    need(features, "ep.embed")
    root = ns("runs")
    client.ep_append(root + "/a", "tool", "deploy of api-gateway failed because the quota was exceeded", embed=True)
    client.ep_append(root + "/b", "tool", "unit tests passed on the first try", embed=True)
    for mode in MODES:
        hits = client.ep_search(root, "api-gateway quota", limit=2, mode=mode)["hits"]
        assert hits and hits[0]["content"].startswith("deploy of api-gateway"), (mode, hits)
        assert isinstance(hits[0].get("match"), dict), (mode, hits[0])


def test_dedupe_values(client: Client, features: Dict[str, Optional[str]]) -> None:
    need(features, "dedupe.report")
    n = ns("kb")
    text = "The nightly backup of the billing database runs at 03:00"
    first = client.sem_upsert(n, text)
    plain = client.sem_upsert(n, text)  # the default, none: just insert
    assert plain["id"] != first["id"] and not plain.get("merged")
    reported = client.sem_upsert(n, text, dedupe="report")
    assert reported["id"] not in (first["id"], plain["id"])
    assert {s["id"] for s in reported.get("similar", [])} >= {first["id"], plain["id"]}
    merged = client.sem_upsert(n, text + ".", dedupe="merge")
    assert merged.get("merged") is True and merged["id"] in (first["id"], plain["id"], reported["id"])
