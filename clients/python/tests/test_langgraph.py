"""MnemoStore (mnemo_client.langgraph) against a real mnemod and LangGraph's own InMemoryStore.

LangGraph must be installed (``pip install langgraph``): a missing framework is a
collection error, never a silent skip.
"""
import asyncio
import threading
import time
import uuid
import zlib
from datetime import datetime
from typing import Any, List, Tuple

import pytest
from langgraph.graph import END, START, StateGraph
from langgraph.store.base import GetOp, InvalidNamespaceError, ListNamespacesOp, MatchCondition, PutOp, SearchOp
from langgraph.store.memory import InMemoryStore
from typing_extensions import TypedDict

from mnemo_client import Client, InvalidParams
from mnemo_client.aio import AsyncClient
from mnemo_client.langgraph import ENVELOPE_MARK, MnemoStore


def root() -> str:
    return "lgt/" + uuid.uuid4().hex[:10]


@pytest.fixture
def store(mnemod: str):
    s = MnemoStore(socket_path=mnemod, namespace=root(), timeout=30)
    yield s
    s.close()


def keys(items: List[Any]) -> List[Tuple[Tuple[str, ...], str]]:
    return [(tuple(i.namespace), i.key) for i in items]


def fake_embed(texts: List[str]) -> List[List[float]]:
    """Deterministic bag-of-words-and-trigrams embedding (64 dims), the same in both stores."""
    out = []
    for t in texts:
        v = [0.0] * 64
        for w in t.lower().split():
            v[zlib.crc32(w.encode()) % 64] += 1.0
            for i in range(len(w) - 2):
                v[zlib.crc32(b"#" + w[i:i + 3].encode()) % 64] += 0.5
        out.append(v)
    return out


# -- get / put / delete --------------------------------------------------------------------------
def test_put_get_roundtrip_fields_and_layout(store: MnemoStore) -> None:
    assert store.get(("users", "u1"), "prefs") is None
    before = datetime.now().astimezone()
    store.put(("users", "u1"), "prefs", {"theme": "dark", "n": [1, 2, {"x": None}]})
    item = store.get(("users", "u1"), "prefs")
    assert item is not None
    assert item.value == {"theme": "dark", "n": [1, 2, {"x": None}]}
    assert item.key == "prefs" and item.namespace == ("users", "u1")
    assert item.created_at.tzinfo is not None and item.created_at == item.updated_at
    assert abs((item.created_at - before).total_seconds()) < 30
    time.sleep(0.01)
    store.put(("users", "u1"), "prefs", {"theme": "light"})
    again = store.get(("users", "u1"), "prefs")
    assert again is not None and again.value == {"theme": "light"}
    assert again.created_at == item.created_at  # kept on update, like PostgresStore
    assert again.updated_at > item.updated_at

    # The Mnemo side: one working-memory key per item, in a namespace per LangGraph namespace,
    # plus the registry entry that makes the namespace listable.
    raw = store.client.get(store.root + "/users/u1", "prefs")
    assert raw["found"] and raw["value"][ENVELOPE_MARK] == 1 and raw["value"]["value"] == {"theme": "light"}
    assert store.client.get(store.root, "ns/users/u1")["value"] == ["users", "u1"]


def test_arbitrary_labels_and_keys_round_trip(store: MnemoStore) -> None:
    ns = ("we ird/label", "ünïcode", "a:b-c_d", "%2E")
    store.put(ns, "key with / and . and ü", {"v": 1})
    assert store.get(ns, "key with / and . and ü").value == {"v": 1}
    assert store.mnemo_namespace(ns) == store.root + "/we.20ird.2Flabel/.C3.BCn.C3.AFcode/a:b-c_d/.252E"
    assert store.list_namespaces(prefix=("we ird/label",)) == [ns]
    assert keys(store.search(("we ird/label", "ünïcode"))) == [(ns, "key with / and . and ü")]
    # Prefixes match whole labels only.
    store.put(("we ird/labelX",), "k", {"v": 2})
    assert keys(store.search(("we ird/label",))) == [(ns, "key with / and . and ü")]


def test_delete_and_put_none(store: MnemoStore) -> None:
    store.put(("a",), "k1", {"v": 1})
    store.put(("a",), "k2", {"v": 2})
    store.delete(("a",), "k1")
    assert store.get(("a",), "k1") is None
    store.batch([PutOp(("a",), "k2", None)])
    assert store.get(("a",), "k2") is None
    store.delete(("a",), "never-existed")  # not an error
    assert store.search(("a",)) == []
    assert store.list_namespaces() == []  # the empty namespace is forgotten


def test_invalid_namespaces(store: MnemoStore) -> None:
    with pytest.raises(InvalidNamespaceError):
        store.put(("langgraph", "x"), "k", {"v": 1})
    with pytest.raises(InvalidNamespaceError):
        store.put(("a.b",), "k", {"v": 1})
    with pytest.raises(InvalidNamespaceError):
        store.put((), "k", {"v": 1})
    with pytest.raises(InvalidNamespaceError):
        store.batch([PutOp(("a.b",), "k", {"v": 1})])  # ops passed straight to batch are checked too
    too_deep = tuple(f"l{i}" for i in range(20))
    with pytest.raises(InvalidNamespaceError, match="does not fit"):
        store.put(too_deep, "k", {"v": 1})
    with pytest.raises(ValueError):
        store.put(("a",), "", {"v": 1})
    assert store.get((), "k") is None


def test_batch_semantics_match_inmemory(store: MnemoStore) -> None:
    ref = InMemoryStore()
    ops_rounds = [
        [PutOp(("docs", "a"), "1", {"t": "one", "n": 1}), PutOp(("docs", "b"), "2", {"t": "two", "n": 2}),
         PutOp(("docs", "a"), "1", {"t": "one-bis", "n": 11})],  # the last write of a key wins
        [GetOp(("docs", "a"), "1"), PutOp(("docs", "a"), "1", {"t": "three"}), GetOp(("docs", "a"), "1"),
         GetOp(("docs", "b"), "2"), GetOp(("docs", "zz"), "9")],  # reads see the state before the batch's puts
        [GetOp(("docs", "a"), "1"), PutOp(("docs", "b"), "2", None),
         ListNamespacesOp(match_conditions=(MatchCondition("prefix", ("docs",)),))],
        [GetOp(("docs", "b"), "2"), ListNamespacesOp(), SearchOp(("docs",))],
    ]

    def view(r: Any) -> Any:
        if r is None:
            return None
        if isinstance(r, list):
            return [view(x) for x in r]
        if isinstance(r, tuple):
            return r
        return (tuple(r.namespace), r.key, r.value)

    for ops in ops_rounds:
        # InMemoryStore lists namespaces that a get() touched or a delete emptied (a defaultdict
        # side effect); PostgresStore and MnemoStore list namespaces holding items only.
        nonempty = {ns for ns, d in ref._data.items() if d}

        def ref_view(r: Any) -> Any:
            if isinstance(r, list) and r and isinstance(r[0], tuple):
                return [ns for ns in r if ns in nonempty]
            return view(r)

        assert [view(r) for r in store.batch(ops)] == [ref_view(r) for r in ref.batch(ops)]


def test_concurrent_writers_compare_and_set(mnemod: str) -> None:
    r = root()
    stores = [MnemoStore(socket_path=mnemod, namespace=r, timeout=30) for _ in range(3)]
    stores[0].put(("c",), "k", {"writer": -1, "i": -1})
    first = stores[0].get(("c",), "k")
    errors: List[BaseException] = []

    def work(w: int) -> None:
        try:
            for i in range(15):
                stores[w].put(("c",), "k", {"writer": w, "i": i})
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    last = stores[0].get(("c",), "k")
    assert last.value["i"] == 14 and last.created_at == first.created_at
    for s in stores:
        s.close()


def test_concurrent_async_writers_back_off_until_each_put_lands(mnemod: str) -> None:
    """Six asyncio writers on one key: lost compare-and-set rounds back off (``Pause`` in
    ``run_async``) and no put gives up; the put that completes last is some writer's last."""
    r = root()

    async def scenario() -> Tuple[Any, Any]:
        stores = [MnemoStore(socket_path=mnemod, namespace=r, timeout=30) for _ in range(6)]
        try:
            await stores[0].aput(("c",), "k", {"writer": -1, "i": -1})
            first = await stores[0].aget(("c",), "k")

            async def work(w: int) -> None:
                for i in range(10):
                    await stores[w].aput(("c",), "k", {"writer": w, "i": i})

            await asyncio.gather(*(work(w) for w in range(6)))
            return first, await stores[0].aget(("c",), "k")
        finally:
            for s in stores:
                s.close()

    first, last = asyncio.run(scenario())
    assert last.value["i"] == 9 and last.created_at == first.created_at


def test_foreign_values_are_readable(store: MnemoStore) -> None:
    store.client.set(store.root + "/ext", "raw", {"written": "by another agent"})
    store.client.set(store.root + "/ext", "scalar", 42)
    assert store.get(("ext",), "raw").value == {"written": "by another agent"}
    assert store.get(("ext",), "scalar").value == {"value": 42}


# -- namespaces ------------------------------------------------------------------------------------
NAMESPACES = [("a", "b", "c"), ("a", "b", "d", "e"), ("a", "b", "d", "i"), ("a", "b", "f"), ("a", "c", "f"),
              ("b", "a", "f"), ("users", "123"), ("users", "456", "settings"), ("admin", "users", "789"),
              ("ab",), ("a",)]


@pytest.mark.parametrize("kwargs", [
    {},
    {"prefix": ("a", "b")},
    {"prefix": ("a",)},
    {"prefix": ("a", "b"), "max_depth": 3},
    {"max_depth": 1},
    {"max_depth": 2, "limit": 3, "offset": 1},
    {"suffix": ("f",)},
    {"prefix": ("a", "*"), "suffix": ("f",)},
    {"prefix": ("*", "b")},
    {"suffix": ("*", "f")},
    {"prefix": ("users",), "suffix": ("settings",)},
    {"limit": 2}, {"limit": 4, "offset": 4}, {"offset": 100},
    {"prefix": ("nope",)},
])
def test_list_namespaces_matches_inmemory(mnemod: str, kwargs: Any) -> None:
    store = MnemoStore(socket_path=mnemod, namespace=root())
    ref = InMemoryStore()
    for i, ns in enumerate(NAMESPACES):
        store.put(ns, f"k{i}", {"i": i})
        ref.put(ns, f"k{i}", {"i": i})
    assert store.list_namespaces(**kwargs) == ref.list_namespaces(**kwargs)
    store.close()


def test_list_namespaces_forgets_emptied_namespaces(store: MnemoStore) -> None:
    store.put(("x", "1"), "k", {"v": 1})
    store.put(("x", "2"), "k", {"v": 1})
    assert store.list_namespaces() == [("x", "1"), ("x", "2")]
    store.delete(("x", "1"), "k")
    assert store.list_namespaces() == [("x", "2")]
    assert store.client.get(store.root, "ns/x/1") == {"found": False}  # registry entry removed
    store.put(("x", "1"), "k", {"v": 2})
    assert store.list_namespaces(prefix=("x",)) == [("x", "1"), ("x", "2")]


# -- search without a query -------------------------------------------------------------------------
def test_search_filters_match_inmemory(store: MnemoStore) -> None:
    ref = InMemoryStore()
    colors = ["red", "green", "blue"]
    for i in range(30):
        ns = ("shop", "s" + str(i % 4))
        value = {"i": i, "color": colors[i % 3], "price": i * 1.5, "meta": {"tier": i % 2, "tags": ["x", str(i % 5)]},
                 "flag": i % 2 == 0}
        store.put(ns, f"item{i:02d}", value)
        ref.put(ns, f"item{i:02d}", value)
    filters = [
        None, {"color": "red"}, {"color": {"$ne": "red"}}, {"price": {"$gt": 20}}, {"price": {"$gte": 21, "$lt": 30}},
        {"i": {"$lte": 3}}, {"meta": {"tier": 1}}, {"meta": {"tags": ["x", "3"]}}, {"flag": True},
        {"color": "blue", "flag": False}, {"color": "purple"}, {"i": {"$eq": 7}},
    ]
    for flt in filters:
        for prefix in [("shop",), ("shop", "s1"), ()]:
            got = store.search(prefix, filter=flt, limit=100)
            want = ref.search(prefix, filter=flt, limit=100)
            assert sorted(keys(got)) == sorted(keys(want)), (flt, prefix)
            assert all(i.score is None for i in got)


def test_search_order_and_pagination(store: MnemoStore) -> None:
    for i in range(25):
        store.put(("log", "p" + str(i % 3)), f"e{i:02d}", {"i": i, "even": i % 2 == 0})
    everything = store.search(("log",), limit=100)
    # Most recently updated first (PostgresStore / SqliteStore order).
    assert [i.value["i"] for i in everything] == list(range(24, -1, -1))
    pages = [store.search(("log",), limit=7, offset=o) for o in range(0, 28, 7)]
    assert [len(p) for p in pages] == [7, 7, 7, 4]
    assert [k for p in pages for k in keys(p)] == keys(everything)
    even = store.search(("log",), filter={"even": True}, limit=5, offset=5)
    assert [i.value["i"] for i in even] == [14, 12, 10, 8, 6]
    # An update moves the item to the front.
    store.put(("log", "p0"), "e00", {"i": 0, "even": True, "touched": True})
    assert store.search(("log",), limit=1)[0].key == "e00"
    assert store.search(("log",), limit=0) == []


# -- semantic search ---------------------------------------------------------------------------------
def test_semantic_search_server_embedder(mnemod: str) -> None:
    store = MnemoStore(socket_path=mnemod, namespace=root(), index={"fields": ["text"]})
    docs = {
        "pizza": "I love eating pizza with mozzarella cheese",
        "pasta": "fresh pasta with tomato sauce and basil",
        "quantum": "quantum entanglement of photons in the laboratory",
        "rocket": "rocket engines burn liquid oxygen and hydrogen",
        "cheese": "cheese fondue with bread",
    }
    for i, (k, text) in enumerate(docs.items()):
        store.put(("food" if k in ("pizza", "pasta", "cheese") else "science", "u1"), k,
                  {"text": text, "rank": i})
    store.put(("food", "u1"), "hidden", {"text": "pizza pizza pizza"}, index=False)

    hits = store.search((), query="pizza with cheese")
    assert hits[0].key == "pizza"
    assert [h.key for h in hits][:2] == ["pizza", "cheese"]
    assert all(h.score is not None for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert "hidden" not in [h.key for h in hits]  # index=False: found by get and scans only
    assert store.get(("food", "u1"), "hidden") is not None
    assert "hidden" in [i.key for i in store.search(("food",), limit=50)]

    # A namespace prefix limits the search; a filter applies to the values.
    assert {h.key for h in store.search(("science",), query="pizza")} == {"quantum", "rocket"}
    assert [h.key for h in store.search((), query="pizza cheese", filter={"rank": {"$gte": 3}})][0] == "cheese"
    # Pagination over ranked results.
    full = store.search((), query="cheese pasta tomato", limit=5)
    assert keys(store.search((), query="cheese pasta tomato", limit=2, offset=0)) == keys(full[:2])
    assert keys(store.search((), query="cheese pasta tomato", limit=2, offset=2)) == keys(full[2:4])

    # Overwriting re-indexes: the old text no longer matches, the new one does.
    engines = "liquid oxygen hydrogen rocket engines"
    before = [h.key for h in store.search((), query=engines)]
    old_ids = store.client.get(store.root + "/science/u1", "rocket")["value"]["index"]
    store.put(("science", "u1"), "rocket", {"text": "a margherita pizza in the canteen", "rank": 9})
    top = store.search((), query="margherita pizza", limit=1)[0]
    assert top.key == "rocket" and top.value["rank"] == 9
    after = [h.key for h in store.search((), query=engines)]
    assert before[0] == "rocket" and after[0] != "rocket"  # it now ranks by its new text
    # Exactly one semantic record per indexed field remains for the item; the old one is gone.
    new_ids = store.client.get(store.root + "/science/u1", "rocket")["value"]["index"]
    assert len(new_ids) == 1 and new_ids != old_ids
    assert store.client.call("sem.get", ns=store.root + "/science/u1", id=new_ids[0])["found"]
    assert not store.client.call("sem.get", ns=store.root + "/science/u1", id=old_ids[0])["found"]

    # Deleting removes it from semantic search and drops its record.
    store.delete(("food", "u1"), "pizza")
    assert "pizza" not in [h.key for h in store.search((), query="pizza mozzarella")]
    # A query without an index config is ignored (as in LangGraph's stores): a plain scan.
    plain = MnemoStore(socket_path=mnemod, namespace=store.root)
    assert {i.key for i in plain.search(("food",), query="anything")} == {"pasta", "cheese", "hidden"}
    plain.close()
    store.close()


def test_semantic_search_per_field_and_array_paths(mnemod: str) -> None:
    store = MnemoStore(socket_path=mnemod, namespace=root(), index={"fields": ["title"]})
    store.put(("d",), "1", {"title": "gardening tips", "body": "tomatoes need sun"})
    store.put(("d",), "2", {"title": "car repair", "body": "change the oil"},
              index=["body", "notes[*].text"])
    store.put(("d",), "3", {"title": "x", "notes": [{"text": "violin practice"}, {"text": "piano scales"}]},
              index=["notes[*].text"])
    assert store.search(("d",), query="gardening", limit=1)[0].key == "1"
    assert store.search(("d",), query="change oil", limit=1)[0].key == "2"
    # Each array element is indexed separately; the item's score is its best element's.
    hits = store.search(("d",), query="piano scales")
    assert hits[0].key == "3" and len([h for h in hits if h.key == "3"]) == 1
    # Texts the embedder cannot embed (no letters or digits) are simply not indexed.
    store.put(("d",), "4", {"title": "!!! ???"})
    assert store.get(("d",), "4").value == {"title": "!!! ???"}
    store.close()


def test_semantic_search_matches_inmemory_with_client_embeddings(mnemod: str) -> None:
    index = {"dims": 64, "embed": fake_embed, "fields": ["text", "extra[*]"]}
    store = MnemoStore(socket_path=mnemod, namespace=root(), index=index)  # type: ignore[arg-type]
    ref = InMemoryStore(index=index)  # type: ignore[arg-type]
    corpus = [
        ("mem", "a", {"text": "the cat sat on the mat", "k": 1}),
        ("mem", "b", {"text": "dogs chase cats in the park", "k": 2, "extra": ["a red ball", "cat toys"]}),
        ("mem", "c", {"text": "stock markets fell sharply today", "k": 3}),
        ("other", "d", {"text": "my cat likes the sunny mat", "k": 4}),
        ("mem", "e", {"text": "recipes for banana bread", "k": 5, "extra": ["bread", "cat"]}),
    ]
    for ns, key, value in corpus:
        store.put((ns,), key, value)
        ref.put((ns,), key, value)
    for query, prefix, flt in [("cat on a mat", (), None), ("cat", ("mem",), None), ("bread", (), None),
                               ("markets", (), {"k": {"$gt": 1}}), ("cat toys", ("mem",), {"k": 2})]:
        got = store.search(prefix, query=query, filter=flt, limit=10)
        want = [w for w in ref.search(prefix, query=query, filter=flt, limit=10) if w.score is not None]
        # Same items, same scores (float32 in Mnemo), same ranking; ties may come in any order.
        def ranked(items: List[Any]) -> List[Any]:
            return sorted(((-round(i.score, 4), tuple(i.namespace), i.key) for i in items))

        assert ranked(got) == ranked(want), query
        assert [g.score for g in got] == sorted((g.score for g in got), reverse=True)
    store.close()


# -- TTL ----------------------------------------------------------------------------------------
def test_ttl_expiry_and_refresh_on_read(store: MnemoStore) -> None:
    store.put(("t",), "short", {"v": 1}, ttl=1.5 / 60)  # minutes
    store.put(("t",), "refreshed", {"v": 2}, ttl=6.0 / 60)
    t0 = time.monotonic()
    store.put(("t",), "forever", {"v": 3})
    assert store.client.get(store.root + "/t", "refreshed")["expires_at"]
    assert "expires_at" not in store.client.get(store.root + "/t", "forever")
    time.sleep(3.0)
    assert store.get(("t",), "refreshed") is not None  # read at ~3 s: the 6 s TTL restarts
    assert store.get(("t",), "short", refresh_ttl=False) is None  # 1.5 s TTL: gone
    assert [i.key for i in store.search(("t",))] == ["forever", "refreshed"]  # search refreshes too
    time.sleep(max(0.0, 7.5 - (time.monotonic() - t0)))
    # ~7.5 s: past the first 6 s, alive thanks to the refresh; this read does not refresh.
    assert store.get(("t",), "refreshed", refresh_ttl=False) is not None
    time.sleep(max(0.0, 10.5 - (time.monotonic() - t0)))
    assert store.get(("t",), "refreshed") is None
    assert store.get(("t",), "forever") is not None
    # Overwriting without a TTL removes it; the default TTL of a TTLConfig applies to put().
    store.put(("t",), "forever", {"v": 4})
    assert "expires_at" not in store.client.get(store.root + "/t", "forever")
    dflt = MnemoStore(store.client, namespace=store.root, ttl={"default_ttl": 10.0, "refresh_on_read": False})
    dflt.put(("t",), "d", {"v": 5})
    exp = store.client.get(store.root + "/t", "d")["expires_at"]
    assert exp and store.get(("t",), "d", refresh_ttl=False).value == {"v": 5}
    dflt.get(("t",), "d")  # refresh_on_read False: not touched
    assert store.client.get(store.root + "/t", "d")["expires_at"] == exp


def test_expired_namespaces_disappear(store: MnemoStore) -> None:
    store.put(("gone",), "k", {"v": 1}, ttl=2.0 / 60)
    store.put(("stays",), "k", {"v": 1})
    assert store.list_namespaces() == [("gone",), ("stays",)]
    time.sleep(3.0)
    assert store.list_namespaces() == [("stays",)]
    assert keys(store.search(())) == [(("stays",), "k")]


# -- async ----------------------------------------------------------------------------------------
def test_async_api_with_and_without_async_client(mnemod: str) -> None:
    async def scenario(store: MnemoStore) -> None:
        await store.aput(("as", "x"), "1", {"text": "asynchronous pizza", "n": 1})
        await store.aput(("as", "y"), "2", {"text": "synchronous pasta", "n": 2})
        got = await asyncio.gather(store.aget(("as", "x"), "1"), store.aget(("as", "y"), "2"),
                                   store.aget(("as", "y"), "nope"))
        assert [g.value["n"] if g else None for g in got] == [1, 2, None]
        assert await store.alist_namespaces(prefix=("as",)) == [("as", "x"), ("as", "y")]
        hits = await store.asearch(("as",), query="pizza")
        assert hits[0].key == "1" and hits[0].score is not None
        assert keys(await store.asearch(("as",), filter={"n": 2})) == [(("as", "y"), "2")]
        await store.adelete(("as", "x"), "1")
        assert await store.aget(("as", "x"), "1") is None

    s1 = MnemoStore(socket_path=mnemod, namespace=root(), index={"fields": ["text"]})
    asyncio.run(scenario(s1))  # blocking client in the executor
    s1.close()

    async def with_aclient() -> None:
        async with AsyncClient(mnemod, agent="lg-async") as ac:
            s2 = MnemoStore(namespace=root(), index={"fields": ["text"]}, aclient=ac)
            await scenario(s2)
            s2.close()

    asyncio.run(with_aclient())


# -- inside a LangGraph graph ----------------------------------------------------------------------
def test_graph_nodes_use_the_store(mnemod: str) -> None:
    from langgraph.config import get_store

    class State(TypedDict):
        user: str
        fact: str
        recalled: List[str]

    def remember(state: State) -> dict:
        get_store().put(("memories", state["user"]), uuid.uuid4().hex, {"fact": state["fact"]})
        return {}

    def recall(state: State) -> dict:
        items = get_store().search(("memories", state["user"]), limit=50)
        return {"recalled": sorted(i.value["fact"] for i in items)}

    builder = StateGraph(State)
    builder.add_node("remember", remember)
    builder.add_node("recall", recall)
    builder.add_edge(START, "remember")
    builder.add_edge("remember", "recall")
    builder.add_edge("recall", END)
    r = root()
    store = MnemoStore(socket_path=mnemod, namespace=r)
    graph = builder.compile(store=store)
    graph.invoke({"user": "ada", "fact": "likes tea", "recalled": []})
    out = graph.invoke({"user": "ada", "fact": "writes code", "recalled": []})
    assert out["recalled"] == ["likes tea", "writes code"]
    store.close()
    # Another process (a fresh store over the same daemon) sees the same memories.
    with MnemoStore(socket_path=mnemod, namespace=r) as again:
        assert again.list_namespaces() == [("memories", "ada")]
    with Client(mnemod) as c:
        assert len(c.list(r + "/memories/ada")["items"]) == 2


def test_index_records_of_expired_items_are_dropped(mnemod: str) -> None:
    store = MnemoStore(socket_path=mnemod, namespace=root(), index={"fields": ["text"]})
    store.put(("e",), "brief", {"text": "ephemeral walrus sighting"}, ttl=2.0 / 60)
    store.put(("e",), "kept", {"text": "permanent walrus colony"})
    rid = store.client.get(store.root + "/e", "brief")["value"]["index"][0]
    assert [h.key for h in store.search(("e",), query="walrus sighting")] == ["brief", "kept"]
    time.sleep(3.0)
    # The item expired in working memory; its semantic record is met, never returned, and dropped.
    assert [h.key for h in store.search(("e",), query="walrus sighting")] == ["kept"]
    assert store.client.call("sem.get", ns=store.root + "/e", id=rid) == {"found": False}
    store.close()


def test_readme_example_runs_as_documented(mnemod: str) -> None:
    from readme_blocks import run_example

    got, documented = run_example("### Use from LangGraph in five minutes", mnemod)
    assert got == documented


# -- retrieval modes ------------------------------------------------------------------------------
def _record_searches(store: MnemoStore) -> List[Any]:
    sent: List[Any] = []
    pipeline = store.client.pipeline

    def recording(calls: Any) -> Any:
        sent.extend(p for m, p in calls if m == "sem.search")
        return pipeline(calls)

    store.client.pipeline = recording  # type: ignore[method-assign]
    return sent


def test_search_default_mode_is_the_servers(mnemod: str) -> None:
    store = MnemoStore(socket_path=mnemod, namespace=root(), index={"fields": ["text"]})
    store.put(("u",), "a", {"text": "Ada prefers answers in French"})
    sent = _record_searches(store)
    hits = store.search(("u",), query="which language does Ada like?")
    assert [h.key for h in hits] == ["a"] and isinstance(hits[0].score, float)
    assert sent and all("mode" not in p and p["text"] == "which language does Ada like?" for p in sent)
    store.close()


def test_search_mode_hybrid_refused_with_client_embeddings(mnemod: str) -> None:
    with pytest.raises(ValueError, match="hybrid"):
        MnemoStore(socket_path=mnemod, namespace=root(), index={"dims": 64, "embed": fake_embed},  # type: ignore[arg-type]
                   search_mode="hybrid")


@pytest.mark.parametrize("mode", ["vector", "keyword", "hybrid"])
def test_search_mode_passed_through(mnemod: str, mode: str) -> None:
    store = MnemoStore(socket_path=mnemod, namespace=root(), index={"fields": ["text"]}, search_mode=mode)
    try:
        store.put(("u",), "a", {"text": "Ada prefers answers in French"})
        store.put(("u",), "b", {"text": "Bob lives in Lisbon near the river"})
        sent = _record_searches(store)
        try:
            hits = store.search(("u",), query="answers French")
        except InvalidParams as e:
            if (e.data or {}).get("field") == "mode":
                pytest.skip(f"mnemod does not support sem.search mode yet: {e.message}")
            raise
        assert sent and all(p.get("mode") == mode for p in sent)
        assert hits[0].key == "a" and all(isinstance(h.score, float) for h in hits)
    finally:
        store.close()


def test_search_mode_keyword_with_client_embeddings_sends_text(mnemod: str) -> None:
    store = MnemoStore(socket_path=mnemod, namespace=root(), index={"dims": 64, "embed": fake_embed},  # type: ignore[arg-type]
                       search_mode="keyword")
    try:
        store.put(("u",), "a", {"text": "the cat sat on the mat"})
        sent = _record_searches(store)
        try:
            hits = store.search(("u",), query="cat mat")
        except InvalidParams as e:
            if (e.data or {}).get("field") == "mode":
                pytest.skip(f"mnemod does not support sem.search mode yet: {e.message}")
            raise
        assert sent and all(p.get("text") == "cat mat" and "vector_b64" not in p for p in sent)
        assert [h.key for h in hits] == ["a"]
    finally:
        store.close()
