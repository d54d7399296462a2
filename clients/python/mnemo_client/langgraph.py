"""A LangGraph ``BaseStore`` backed by mnemod: :class:`MnemoStore`.

Needs LangGraph (``pip install 'mnemo-client[langgraph]'``); the rest of the package does not.

Layout in Mnemo (``root`` is the ``namespace=`` argument, default ``langgraph``):

* An item ``(namespace, key)`` is the working-memory key ``key`` in the Mnemo namespace
  ``root/<label 1>/.../<label n>`` (each label one segment, encoded by
  :func:`mnemo._adapter_util.encode_segment`: ``[A-Za-z0-9_:-]`` as is, any other byte as
  ``.XX``). Working memory is durable and versioned; the value is an envelope
  ``{"mnemo.langgraph": 1, "value", "created_at", "updated_at", "ttl_ms", "gen", "index"}``.
  Writes are compare-and-set on the key's version (``created_at`` survives updates, as in
  ``PostgresStore``). A TTL (``ttl`` minutes) is the key's Mnemo TTL: the daemon expires it.
* Namespace registry: the working-memory key ``ns/<label 1>/.../<label n>`` (encoded) in
  the namespace ``root`` is set in the same ``wm.txn`` as every put, so ``list_namespaces`` and
  prefix searches find namespaces with one ``wm.list``. An entry whose namespace is found
  empty is removed with a version-guarded transaction (a concurrent put keeps it).
* With ``index=`` configured, each indexed text (per field path, as LangGraph extracts it) is
  a semantic record in the item's Mnemo namespace, embedded by the daemon's embedder (or by
  ``index["embed"]`` on the client, sent as a vector). A record carries the put's
  generation (``gen``); a search hit counts only if its item's current envelope has that
  generation, so hits of overwritten, deleted or expired items are never returned (and are
  deleted when met). ``search(query=...)`` is ``sem.search`` over the prefix's namespace
  (in the daemon's default retrieval mode unless ``search_mode`` pins one), max-pooled per
  item, then ``filter`` is applied to the items' values; each item's ``score`` is its best
  hit's score.
"""
from __future__ import annotations

import asyncio
import base64
import json
import struct
import uuid
from datetime import datetime, timezone
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple, Union, cast

try:
    from langgraph.store.base import (
        BaseStore,
        GetOp,
        IndexConfig,
        InvalidNamespaceError,
        Item,
        ListNamespacesOp,
        MatchCondition,
        Op,
        PutOp,
        Result,
        SearchItem,
        SearchOp,
        TTLConfig,
        ensure_embeddings,
        get_text_at_path,
        tokenize_path,
    )
except ImportError as e:  # pragma: no cover - exercised only without langgraph
    raise ImportError(
        "mnemo_client.langgraph needs LangGraph: pip install 'mnemo-client[langgraph]' (or: pip install langgraph)"
    ) from e

try:  # langgraph >= 1.x validates the labels of ops passed straight to batch()
    from langgraph.store.base import validate_op_namespace as _lg_validate_op
except ImportError:  # pragma: no cover - older langgraph
    _lg_validate_op = None  # type: ignore[assignment]

from ._adapter_util import (
    MAX_NS_BYTES,
    MAX_NS_SEGMENTS,
    Calls,
    Pause,
    Plan,
    check_ns_root,
    decode_segment,
    encode_segment,
    retry_delay,
    run_async,
    run_sync,
    truncate_utf8,
)
from .aio import AsyncClient
from .client import Client
from .errors import Conflict, InvalidParams, MnemoError

__all__ = ["MnemoStore"]

ENVELOPE_MARK = "mnemo.langgraph"  # a stored format mark, kept when the package was renamed
#: Registry keys (in the root namespace) are this prefix + the encoded labels joined by "/".
REGISTRY_PREFIX = "ns/"
#: Compare-and-set rounds of one put before giving up (each lost round means another writer
#: won; rounds after the first back off with jitter, see ``retry_delay``: ~1 s in all).
MAX_CAS_ATTEMPTS = 32

Namespace = Tuple[str, ...]


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _parse_time(s: Any) -> datetime:
    if isinstance(s, str):
        if s.endswith("Z"):
            s = s[:-1] + "+00:00"
        try:
            return datetime.fromisoformat(s)
        except ValueError:
            pass
    return datetime.fromtimestamp(0, timezone.utc)


def _ttl_ms(ttl_minutes: Optional[float]) -> Optional[int]:
    if ttl_minutes is None:
        return None
    return max(1, int(round(float(ttl_minutes) * 60_000)))


def _raise_if_error(result: Any) -> Any:
    if isinstance(result, BaseException):
        raise result
    return result


# -- filters (the semantics of LangGraph's InMemoryStore / PostgresStore) ---------------------------
def _apply_operator(value: Any, operator: str, op_value: Any) -> bool:
    if operator == "$eq":
        return bool(value == op_value)
    if operator == "$ne":
        return bool(value != op_value)
    if operator in ("$gt", "$gte", "$lt", "$lte"):
        if value is None:
            return False
        try:
            a, b = float(value), float(op_value)
        except (TypeError, ValueError):
            if isinstance(value, str) and isinstance(op_value, str):
                a, b = value, op_value  # type: ignore[assignment]
            else:
                return False
        if operator == "$gt":
            return a > b
        if operator == "$gte":
            return a >= b
        if operator == "$lt":
            return a < b
        return a <= b
    raise ValueError(f"Unsupported operator: {operator}")


def _compare_values(item_value: Any, filter_value: Any) -> bool:
    if isinstance(filter_value, dict):
        if any(k.startswith("$") for k in filter_value):
            return all(_apply_operator(item_value, k, v) for k, v in filter_value.items())
        if not isinstance(item_value, dict):
            return False
        return all(_compare_values(item_value.get(k), v) for k, v in filter_value.items())
    if isinstance(filter_value, (list, tuple)):
        return (isinstance(item_value, (list, tuple)) and len(item_value) == len(filter_value)
                and all(_compare_values(a, b) for a, b in zip(item_value, filter_value)))
    return bool(item_value == filter_value)


def _matches_filter(value: Mapping[str, Any], flt: Optional[Mapping[str, Any]]) -> bool:
    if not flt:
        return True
    return all(_compare_values(value.get(k), v) for k, v in flt.items())


def _does_match(cond: MatchCondition, ns: Namespace) -> bool:
    path = tuple(cond.path)
    if len(ns) < len(path):
        return False
    pairs = zip(ns, path) if cond.match_type == "prefix" else zip(reversed(ns), reversed(path))
    if cond.match_type not in ("prefix", "suffix"):
        raise ValueError(f"Unsupported match type: {cond.match_type}")
    return all(p == "*" or k == p for k, p in pairs)


class _Loaded:
    """An item as read from working memory."""

    __slots__ = ("namespace", "key", "value", "created_at", "updated_at", "ttl_ms", "gen", "index",
                 "version", "envelope")

    def __init__(self, namespace: Namespace, key: str, got: Mapping[str, Any]) -> None:
        raw = got.get("value")
        self.namespace = namespace
        self.key = key
        self.version: int = int(got.get("version", 0))
        if isinstance(raw, dict) and raw.get(ENVELOPE_MARK) == 1 and isinstance(raw.get("value"), dict):
            self.envelope: Optional[Dict[str, Any]] = raw
            self.value: Dict[str, Any] = raw["value"]
            self.created_at = _parse_time(raw.get("created_at"))
            self.updated_at = _parse_time(raw.get("updated_at"))
            ttl = raw.get("ttl_ms")
            self.ttl_ms: Optional[int] = int(ttl) if isinstance(ttl, int) and ttl > 0 else None
            self.gen: Optional[str] = raw.get("gen") if isinstance(raw.get("gen"), str) else None
            ix = raw.get("index")
            self.index: List[str] = [i for i in ix if isinstance(i, str)] if isinstance(ix, list) else []
        else:
            # Written by something else than this adapter: shown as is (non-objects wrapped).
            self.envelope = None
            self.value = raw if isinstance(raw, dict) else {"value": raw}
            at = _parse_time((got.get("provenance") or {}).get("at"))
            self.created_at = self.updated_at = at
            self.ttl_ms = None
            self.gen = None
            self.index = []

    def item(self) -> Item:
        return Item(value=self.value, key=self.key, namespace=self.namespace,
                    created_at=self.created_at, updated_at=self.updated_at)

    def search_item(self, score: Optional[float] = None) -> SearchItem:
        return SearchItem(namespace=self.namespace, key=self.key, value=self.value,
                          created_at=self.created_at, updated_at=self.updated_at, score=score)


class _PreparedPut:
    __slots__ = ("op", "texts")

    def __init__(self, op: PutOp, texts: List[Tuple[str, str]]) -> None:
        self.op = op
        self.texts = texts  # (field path name, text) to index


class MnemoStore(BaseStore):
    """LangGraph long-term memory store over a running ``mnemod``.

    ``MnemoStore(client=None, *, socket_path=None, agent="langgraph", token=None,
    timeout=None, namespace="langgraph", index=None, ttl=None, aclient=None)``

    * ``client``: a :class:`mnemo_client.Client` to use (else one is opened with ``socket_path``,
      ``agent``, ``token``, ``timeout`` and closed by :meth:`close`).
    * ``aclient``: optionally a connected :class:`mnemo_client.aio.AsyncClient` for ``abatch``
      (otherwise ``abatch`` runs the blocking client in the default executor).
    * ``namespace``: the Mnemo namespace under which the store lives.
    * ``index``: ``{"fields": [...]}`` (default ``["$"]``: the whole value) turns on
      semantic search with the daemon's embedder; add ``"embed"`` (a LangChain
      ``Embeddings``, or a sync/async function of a list of texts) and ``"dims"`` to embed
      on the client instead.
    * ``ttl``: LangGraph's ``TTLConfig`` (``default_ttl`` minutes, ``refresh_on_read``).
      Expiry is done by the daemon; ``sweep_interval_minutes`` is not needed.
    * ``search_mode``: ``None`` (default) sends ``search(query=...)`` as a text ``sem.search``
      without a mode, so the daemon's default retrieval mode applies; ``"vector"``,
      ``"keyword"`` (bm25 over the indexed texts) or ``"hybrid"`` (reciprocal rank fusion of
      both) pins one. With ``index["embed"]`` the query is sent as the client's vector
      (``"vector"``/default) or as text (``"keyword"``); ``"hybrid"`` is refused there.
    """

    supports_ttl: bool = True

    def __init__(
        self,
        client: Optional[Client] = None,
        *,
        socket_path: Optional[str] = None,
        agent: str = "langgraph",
        token: Optional[str] = None,
        timeout: Optional[float] = None,
        namespace: str = "langgraph",
        index: Optional[IndexConfig] = None,
        ttl: Optional[TTLConfig] = None,
        aclient: Optional[AsyncClient] = None,
        search_mode: Optional[str] = None,
    ) -> None:
        self.root: str = check_ns_root(namespace)
        self._root_segments = self.root.count("/") + 1
        self._owns_client = client is None
        if client is None:
            path = socket_path if socket_path is not None else (aclient.socket_path if aclient else None)
            client = Client(path, agent=agent, token=token, timeout=timeout)
        self.client: Client = client
        self.aclient: Optional[AsyncClient] = aclient
        self.ttl_config = ttl
        limits = self.client.session.get("limits") or {}
        self._max_k: int = int(limits.get("max_search_k", 1000))
        self._max_list: int = int(limits.get("max_list_limit", 1000))
        self._max_text: int = int(limits.get("max_fact_text_bytes", 65536))
        self.index_config: Optional[Dict[str, Any]] = None
        self.embeddings: Any = None
        self._fields: List[Tuple[str, Union[str, List[str]]]] = []
        if index:
            cfg: Dict[str, Any] = dict(index)
            fields = cfg.get("fields") or ["$"]
            self._fields = [(p, p if p == "$" else tokenize_path(p)) for p in fields]
            if cfg.get("embed") is not None:
                self.embeddings = ensure_embeddings(cfg["embed"])
            self.index_config = cfg
        if search_mode is not None and not isinstance(search_mode, str):
            raise TypeError("search_mode must be a string: 'vector', 'keyword' or 'hybrid'")
        if search_mode == "hybrid" and self.embeddings is not None:
            raise ValueError("search_mode='hybrid' needs the daemon's embedder: with index['embed'] the "
                             "records hold client vectors, which a text query embedded by the server "
                             "cannot be compared with; use 'vector' or 'keyword'")
        self.search_mode: Optional[str] = search_mode

    # -- lifecycle ---------------------------------------------------------------------------
    def close(self) -> None:
        """Close the client if this store opened it."""
        if self._owns_client:
            self.client.close()

    def __enter__(self) -> "MnemoStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- names -------------------------------------------------------------------------------
    def mnemo_namespace(self, namespace: Sequence[str]) -> str:
        """The Mnemo namespace holding the items of a LangGraph ``namespace``."""
        if not namespace:
            return self.root
        segments = [encode_segment(label) for label in namespace]
        ns = self.root + "/" + "/".join(segments)
        if self._root_segments + len(segments) > MAX_NS_SEGMENTS or len(ns.encode()) > MAX_NS_BYTES:
            raise InvalidNamespaceError(
                f"namespace {tuple(namespace)} does not fit a Mnemo namespace under {self.root!r}: at most "
                f"{MAX_NS_SEGMENTS - self._root_segments} labels and {MAX_NS_BYTES} bytes once encoded")
        return ns

    def _registry_key(self, namespace: Sequence[str]) -> str:
        return REGISTRY_PREFIX + "/".join(encode_segment(label) for label in namespace)

    @staticmethod
    def _decode_path(path: str) -> Optional[Namespace]:
        labels = [decode_segment(s) for s in path.split("/")]
        if not labels or any(label is None for label in labels):
            return None
        return tuple(cast(List[str], labels))

    def _decode_registry_key(self, key: str) -> Optional[Namespace]:
        if not key.startswith(REGISTRY_PREFIX):
            return None
        return self._decode_path(key[len(REGISTRY_PREFIX):])

    def _decode_mnemo_ns(self, ns: str) -> Optional[Namespace]:
        if not ns.startswith(self.root + "/"):
            return None
        return self._decode_path(ns[len(self.root) + 1:])

    # -- batch -------------------------------------------------------------------------------
    def batch(self, ops: Iterable[Op]) -> List[Result]:
        ops_list, puts, queries = self._prepare(ops)
        vectors = self._embed_sync(puts, queries)
        return run_sync(self.client, self._plan_batch(ops_list, puts, vectors))

    async def abatch(self, ops: Iterable[Op]) -> List[Result]:
        ops_list, puts, queries = self._prepare(ops)
        vectors = await self._embed_async(puts, queries)
        plan = self._plan_batch(ops_list, puts, vectors)
        if self.aclient is not None:
            return await run_async(self.aclient, plan)
        return await asyncio.get_running_loop().run_in_executor(None, run_sync, self.client, plan)

    def _prepare(self, ops: Iterable[Op]) -> Tuple[List[Op], Dict[Tuple[Namespace, str], _PreparedPut], List[str]]:
        ops_list = list(ops)
        puts: Dict[Tuple[Namespace, str], _PreparedPut] = {}
        queries: List[str] = []
        for op in ops_list:
            if _lg_validate_op is not None:
                _lg_validate_op(op)
            if isinstance(op, PutOp):
                if not op.namespace:
                    raise InvalidNamespaceError("Namespace cannot be empty.")
                if not isinstance(op.key, str) or not op.key:
                    raise ValueError("a Mnemo key must be a non-empty string")
                self.mnemo_namespace(op.namespace)  # fits?
                puts[(tuple(op.namespace), op.key)] = _PreparedPut(op, self._texts_for(op))  # last write wins
            elif isinstance(op, SearchOp):
                if op.query and self.index_config is not None and self.search_mode != "keyword":
                    queries.append(op.query)
            elif not isinstance(op, (GetOp, ListNamespacesOp)):
                raise ValueError(f"Unknown operation type: {type(op)}")
        return ops_list, puts, queries

    def _texts_for(self, op: PutOp) -> List[Tuple[str, str]]:
        if op.value is None or self.index_config is None or op.index is False:
            return []
        paths = self._fields if op.index is None else [(p, p if p == "$" else tokenize_path(p)) for p in op.index]
        out: List[Tuple[str, str]] = []
        for path, tokens in paths:
            texts = get_text_at_path(op.value, tokens)
            for i, text in enumerate(texts):
                name = f"{path}.{i}" if len(texts) > 1 else path
                text = truncate_utf8(text, self._max_text)
                if text.strip():
                    out.append((name, text))
        return out

    def _texts_to_embed(self, puts: Mapping[Any, _PreparedPut]) -> List[str]:
        seen: Dict[str, None] = {}
        for p in puts.values():
            for _, text in p.texts:
                seen.setdefault(text, None)
        return list(seen)

    def _embed_sync(self, puts: Mapping[Any, _PreparedPut], queries: List[str]) -> Dict[str, List[float]]:
        if self.embeddings is None:
            return {}
        out: Dict[str, List[float]] = {}
        docs = self._texts_to_embed(puts)
        if docs:
            out.update(zip(docs, self.embeddings.embed_documents(docs)))
        for q in dict.fromkeys(queries):
            out[q] = self.embeddings.embed_query(q)
        return out

    async def _embed_async(self, puts: Mapping[Any, _PreparedPut], queries: List[str]) -> Dict[str, List[float]]:
        if self.embeddings is None:
            return {}
        out: Dict[str, List[float]] = {}
        docs = self._texts_to_embed(puts)
        if docs:
            out.update(zip(docs, await self.embeddings.aembed_documents(docs)))
        qs = list(dict.fromkeys(queries))
        for q, v in zip(qs, await asyncio.gather(*(self.embeddings.aembed_query(q) for q in qs))):
            out[q] = v
        return out

    @staticmethod
    def _b64(vector: Sequence[float]) -> str:
        return base64.b64encode(struct.pack("<%df" % len(vector), *vector)).decode("ascii")

    def _plan_batch(self, ops: List[Op], puts: Dict[Tuple[Namespace, str], _PreparedPut],
                    vectors: Dict[str, List[float]]) -> Plan[List[Result]]:
        # Like LangGraph's own stores: reads see the state before this batch's writes.
        results: List[Result] = [None] * len(ops)
        gets = [(i, op) for i, op in enumerate(ops) if isinstance(op, GetOp)]
        if gets:
            yield from self._plan_gets(gets, results)
        for i, op in enumerate(ops):
            if isinstance(op, SearchOp):
                results[i] = yield from self._plan_search(op, vectors)
            elif isinstance(op, ListNamespacesOp):
                results[i] = yield from self._plan_list_namespaces(op)
        if puts:
            yield from self._plan_puts(list(puts.values()), vectors)
        return results

    # -- get -------------------------------------------------------------------------------------
    def _plan_gets(self, gets: List[Tuple[int, GetOp]], results: List[Result]) -> Plan[None]:
        calls: Calls = []
        wanted: List[Tuple[int, GetOp]] = []
        for i, op in gets:
            if not op.namespace:
                continue  # nothing is ever stored at the empty namespace
            calls.append(("wm.get", {"ns": self.mnemo_namespace(op.namespace), "key": str(op.key)}))
            wanted.append((i, op))
        replies = yield calls
        touched: List[_Loaded] = []
        for (i, op), reply in zip(wanted, replies):
            got = _raise_if_error(reply)
            if not got.get("found"):
                continue
            loaded = _Loaded(tuple(op.namespace), str(op.key), got)
            results[i] = loaded.item()
            if getattr(op, "refresh_ttl", True):
                touched.append(loaded)
        yield from self._plan_refresh(touched)

    def _plan_refresh(self, items: List[_Loaded]) -> Plan[None]:
        """Restart the TTL of items read (LangGraph's refresh-on-read).

        Done as a version-guarded rewrite (``wm.txn``): a plain ``wm.expire`` could put the
        TTL read here on a value written meanwhile by someone else (with another TTL or none).
        """
        calls: Calls = []
        for it in items:
            if it.envelope is None or not it.ttl_ms:
                continue
            ns = self.mnemo_namespace(it.namespace)
            calls.append(("wm.txn", {
                "compare": [{"ns": ns, "key": it.key, "version": it.version}],
                "ops": [{"op": "set", "ns": ns, "key": it.key, "value": it.envelope, "ttl_ms": it.ttl_ms}],
            }))
        if calls:
            replies = yield calls
            for r in replies:
                if isinstance(r, MnemoError) and not isinstance(r, Conflict):
                    raise r  # a conflict means it was written meanwhile: that write set its TTL

    # -- put / delete --------------------------------------------------------------------------
    def _plan_puts(self, puts: List[_PreparedPut], vectors: Dict[str, List[float]]) -> Plan[None]:
        now = _now().isoformat()
        pending = puts
        sem_calls: Calls = []
        for attempt in range(MAX_CAS_ATTEMPTS):
            if attempt:
                yield Pause(retry_delay(attempt))  # lost a race: back off before reading again
            reads = yield [("wm.get", {"ns": self.mnemo_namespace(p.op.namespace), "key": p.op.key}) for p in pending]
            writes: Calls = []
            after: List[Tuple[_PreparedPut, Optional[_Loaded], Calls]] = []
            for p, reply in zip(pending, reads):
                got = _raise_if_error(reply)
                ns_t = tuple(p.op.namespace)
                ns = self.mnemo_namespace(ns_t)
                prev = _Loaded(ns_t, p.op.key, got) if got.get("found") else None
                if p.op.value is None:
                    if prev is None:
                        continue
                    writes.append(("wm.del", {"ns": ns, "key": p.op.key, "if_version": prev.version}))
                    after.append((p, prev, []))
                    continue
                gen = uuid.uuid4().hex
                index_calls: Calls = []
                ids: List[str] = []
                for j, (path, text) in enumerate(p.texts):
                    rid = f"{gen}.{j}"
                    ids.append(rid)
                    params: Dict[str, Any] = {"ns": ns, "id": rid, "text": text,
                                              "data": {"key": p.op.key, "path": path, "gen": gen}}
                    if text in vectors:
                        params["vector_b64"] = self._b64(vectors[text])
                    index_calls.append(("sem.upsert", params))
                ttl_ms = _ttl_ms(getattr(p.op, "ttl", None))
                envelope = {
                    ENVELOPE_MARK: 1,
                    "value": dict(p.op.value),
                    "created_at": prev.created_at.isoformat() if prev is not None and prev.envelope else now,
                    "updated_at": now,
                    "ttl_ms": ttl_ms,
                    "gen": gen,
                    "index": ids,
                }
                compare = ({"ns": ns, "key": p.op.key, "version": prev.version} if prev is not None
                           else {"ns": ns, "key": p.op.key, "absent": True})
                item_op: Dict[str, Any] = {"op": "set", "ns": ns, "key": p.op.key, "value": envelope}
                if ttl_ms is not None:
                    item_op["ttl_ms"] = ttl_ms
                writes.append(("wm.txn", {
                    "compare": [compare],
                    "ops": [{"op": "set", "ns": self.root, "key": self._registry_key(ns_t), "value": list(ns_t)},
                            item_op],
                }))
                after.append((p, prev, index_calls))
            replies = yield writes
            retry: List[_PreparedPut] = []
            first_error: Optional[BaseException] = None
            for (p, prev, index_calls), reply in zip(after, replies):
                if isinstance(reply, Conflict):
                    retry.append(p)  # written meanwhile: read again, apply on top (last writer wins)
                    continue
                if isinstance(reply, BaseException):
                    first_error = first_error or reply
                    continue
                sem_calls.extend(index_calls)
                if prev is not None:
                    ns = self.mnemo_namespace(prev.namespace)
                    sem_calls.extend(("sem.delete", {"ns": ns, "id": rid}) for rid in prev.index)
            if first_error is not None:
                yield from self._plan_index(sem_calls)
                raise first_error
            pending = retry
            if not pending:
                break
        else:
            raise RuntimeError(f"MnemoStore: {len(pending)} put(s) lost {MAX_CAS_ATTEMPTS} compare-and-set races in a row")
        yield from self._plan_index(sem_calls)

    def _plan_index(self, calls: Calls) -> Plan[None]:
        if not calls:
            return
        replies = yield calls
        for (method, _), r in zip(calls, replies):
            if not isinstance(r, MnemoError):
                continue
            if method == "sem.upsert" and isinstance(r, InvalidParams) and (r.data or {}).get("field") == "text":
                continue  # a text the embedder cannot embed (e.g. no letters or digits): not indexed
            raise r

    # -- search --------------------------------------------------------------------------------
    def _plan_search(self, op: SearchOp, vectors: Dict[str, List[float]]) -> Plan[List[SearchItem]]:
        if op.limit <= 0:
            return []
        if op.query and self.index_config is not None:
            return (yield from self._plan_vector_search(op, vectors))
        return (yield from self._plan_scan_search(op))

    def _plan_vector_search(self, op: SearchOp, vectors: Dict[str, List[float]]) -> Plan[List[SearchItem]]:
        assert op.query
        ns_prefix = self.mnemo_namespace(op.namespace_prefix)
        want = op.offset + op.limit
        k = min(self._max_k, max(10, 2 * want * max(1, len(self._fields)) + 1))
        stale: Dict[Tuple[str, str], None] = {}
        while True:
            params: Dict[str, Any] = {"ns": ns_prefix, "k": k}
            if self.search_mode is not None:
                params["mode"] = self.search_mode
            if op.query in vectors and self.search_mode != "keyword":
                params["vector_b64"] = self._b64(vectors[op.query])
            else:
                params["text"] = op.query
            reply = (yield [("sem.search", params)])[0]
            hits = _raise_if_error(reply).get("hits", [])
            # The items are read after the search, so a hit whose generation is not its
            # item's current one is from an overwritten, deleted or expired version: its
            # record can never be valid again (generations are never reused).
            loaded: Dict[Tuple[str, str], Optional[_Loaded]] = {}
            fetch: List[Tuple[str, str, Namespace]] = []
            for h in hits:
                data = h.get("data") if isinstance(h.get("data"), dict) else {}
                key, ns_t = data.get("key"), self._decode_mnemo_ns(h.get("ns", ""))
                if not isinstance(data.get("gen"), str):
                    continue  # not an index record of this store
                if isinstance(key, str) and ns_t is not None and (h["ns"], key) not in loaded:
                    loaded[(h["ns"], key)] = None
                    fetch.append((h["ns"], key, ns_t))
            if fetch:
                replies = yield [("wm.get", {"ns": ns, "key": key}) for ns, key, _ in fetch]
                for (ns, key, ns_t), r in zip(fetch, replies):
                    got = _raise_if_error(r)
                    loaded[(ns, key)] = _Loaded(ns_t, key, got) if got.get("found") else None
            ranked: List[Tuple[float, _Loaded]] = []
            seen: Set[Tuple[str, str]] = set()
            for h in hits:  # hits come best first: the first valid hit of an item is its max
                data = h.get("data") if isinstance(h.get("data"), dict) else {}
                ident = (h.get("ns", ""), data.get("key"))
                if ident not in loaded or not isinstance(data.get("gen"), str):
                    continue  # not an index record of this store
                it = loaded[ident]
                if it is None or it.gen is None or data.get("gen") != it.gen:
                    stale[(h["ns"], h["id"])] = None
                    continue
                if ident in seen:
                    continue
                seen.add(ident)
                if _matches_filter(it.value, op.filter):
                    ranked.append((float(h.get("score", 0.0)), it))
            if len(ranked) >= want or len(hits) < k or k >= self._max_k:
                break
            k = min(self._max_k, k * 4)
        if stale:
            yield [("sem.delete", {"ns": ns, "id": rid}) for ns, rid in stale]  # best effort
        page = ranked[op.offset:op.offset + op.limit]
        if getattr(op, "refresh_ttl", True):
            yield from self._plan_refresh([it for _, it in page])
        return [it.search_item(score) for score, it in page]

    def _plan_scan_search(self, op: SearchOp) -> Plan[List[SearchItem]]:
        prefix = tuple(op.namespace_prefix)
        entries = yield from self._plan_registry(prefix)
        namespaces = [e for e in entries if e[0][:len(prefix)] == prefix]
        keys = yield from self._plan_list_keys([self.mnemo_namespace(ns) for ns, _, _ in namespaces])
        empty = [e for e, ks in zip(namespaces, keys) if not ks]
        calls: Calls = []
        owners: List[Tuple[Namespace, str]] = []
        for (ns_t, _, _), ks in zip(namespaces, keys):
            ns = self.mnemo_namespace(ns_t)
            for key in ks:
                calls.append(("wm.get", {"ns": ns, "key": key}))
                owners.append((ns_t, key))
        replies = yield calls
        items: List[_Loaded] = []
        for (ns_t, key), r in zip(owners, replies):
            got = _raise_if_error(r)
            if got.get("found"):
                it = _Loaded(ns_t, key, got)
                if _matches_filter(it.value, op.filter):
                    items.append(it)
        # PostgresStore / SqliteStore order: most recently updated first.
        items.sort(key=lambda it: (it.updated_at, it.version), reverse=True)
        page = items[op.offset:op.offset + op.limit]
        yield from self._plan_forget(empty)
        if getattr(op, "refresh_ttl", True):
            yield from self._plan_refresh(page)
        return [it.search_item() for it in page]

    # -- namespaces ----------------------------------------------------------------------------
    def _plan_registry(self, literal_prefix: Namespace) -> Plan[List[Tuple[Namespace, str, int]]]:
        """Registry entries whose encoded key starts like ``literal_prefix``: (namespace, key, version)."""
        key_prefix = self._registry_key(literal_prefix) if literal_prefix else REGISTRY_PREFIX
        out: List[Tuple[Namespace, str, int]] = []
        cursor: Optional[str] = None
        while True:
            params: Dict[str, Any] = {"ns": self.root, "prefix": key_prefix, "limit": self._max_list}
            if cursor:
                params["cursor"] = cursor
            page = _raise_if_error((yield [("wm.list", params)])[0])
            for entry in page.get("items", []):
                ns_t = self._decode_registry_key(entry["key"])
                if ns_t is not None:
                    out.append((ns_t, entry["key"], int(entry["version"])))
            cursor = page.get("cursor")
            if not cursor:
                return out

    def _plan_list_keys(self, namespaces: List[str], limit: Optional[int] = None) -> Plan[List[List[str]]]:
        """The keys of each Mnemo namespace (all of them, or the first ``limit``), paging in rounds."""
        keys: List[List[str]] = [[] for _ in namespaces]
        cursors: Dict[int, Optional[str]] = {i: None for i in range(len(namespaces))}
        page_size = min(self._max_list, limit) if limit else self._max_list
        while cursors:
            order = list(cursors)
            calls: Calls = []
            for i in order:
                params: Dict[str, Any] = {"ns": namespaces[i], "limit": page_size}
                if cursors[i]:
                    params["cursor"] = cursors[i]
                calls.append(("wm.list", params))
            replies = yield calls
            for i, r in zip(order, replies):
                page = _raise_if_error(r)
                keys[i].extend(entry["key"] for entry in page.get("items", []))
                nxt = page.get("cursor")
                if nxt and not (limit and len(keys[i]) >= limit):
                    cursors[i] = nxt
                else:
                    del cursors[i]
        return keys

    def _plan_forget(self, entries: List[Tuple[Namespace, str, int]]) -> Plan[None]:
        """Drop registry entries of namespaces found empty, unless a put touched them since."""
        if not entries:
            return
        yield [("wm.txn", {"compare": [{"ns": self.root, "key": key, "version": version}],
                           "ops": [{"op": "del", "ns": self.root, "key": key}]})
               for _, key, version in entries]  # conflicts are expected and fine

    def _plan_list_namespaces(self, op: ListNamespacesOp) -> Plan[List[Namespace]]:
        conditions = tuple(op.match_conditions or ())
        literal: Tuple[str, ...] = ()
        for cond in conditions:
            if cond.match_type == "prefix":
                lit: List[str] = []
                for label in cond.path:
                    if label == "*":
                        break
                    lit.append(label)
                if len(lit) > len(literal):
                    literal = tuple(lit)
        entries = yield from self._plan_registry(literal)
        candidates = [e for e in entries if all(_does_match(c, e[0]) for c in conditions)]
        firsts = yield from self._plan_list_keys([self.mnemo_namespace(ns) for ns, _, _ in candidates], limit=1)
        live = [e[0] for e, ks in zip(candidates, firsts) if ks]
        yield from self._plan_forget([e for e, ks in zip(candidates, firsts) if not ks])
        if op.max_depth is not None:
            result = sorted({ns[:op.max_depth] for ns in live})
        else:
            result = sorted(set(live))
        return result[op.offset:op.offset + op.limit]
