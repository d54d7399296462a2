"""An OpenAI Agents SDK ``Session`` over Mnemo's episodic memory: :class:`MnemoSession`.

Needs the SDK (``pip install 'mnemo-client[openai-agents]'``); the rest of the package does not.

One session is one episodic namespace, ``<namespace>/<session id>`` (the id encoded as one
segment: ``[A-Za-z0-9_:-]`` as is, any other byte as ``.XX``). Each conversation item is
one ``ep.append`` record, in order (a connection's calls take effect in order, so the
records' revisions follow the list):

* ``kind="agents.item"``: ``data`` is the item exactly as the SDK passed it; ``content``
  is a plain-text rendering (``"user: hello"``, ``"function_call add({...})"``...) so the
  conversation is searchable with ``ep.search`` and summarizable; tagged ``role:<role>`` /
  ``type:<type>``.
* The episodic tier has no way to delete one record (there is ``ep.prune`` by age/count
  only, oldest first, and it needs the admin permission), so :meth:`pop_item` appends a
  tombstone, ``kind="agents.pop"``, naming the record it removes (``data.pop`` and
  ``derived_from``). Its ``idempotency_key`` is ``pop:<record id>`` with a random nonce
  in ``data``: when two clients pop the same newest item at once the second append is
  ``IDEMPOTENCY_MISMATCH`` and that client retries with the next item, so an item is popped
  exactly once.
* :meth:`clear_session` appends a marker, ``kind="agents.clear"``: readers ignore
  everything at or before the newest marker. Then, if ``prune_on_clear`` (default) and the
  agent may (``ep.prune`` needs ``a`` on the namespace), the records are deleted with
  ``ep.prune {max_count: 0}``; without the permission the marker alone clears the session.

Readers (:meth:`get_items`, :meth:`pop_item`) walk the records newest first (``ep.query
order=desc``, pages of up to 1000) until they have enough live items or reach a clear
marker. Records of other kinds (e.g. ``summary`` records written by ``ep.summarize``) are
ignored.
"""
from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any, Dict, Iterator, List, Optional, Union

try:
    from agents.memory.session_settings import SessionSettings
except ImportError as e:  # pragma: no cover - exercised only without the SDK
    raise ImportError(
        "mnemo_client.openai_agents needs the OpenAI Agents SDK: pip install 'mnemo-client[openai-agents]' "
        "(or: pip install openai-agents)"
    ) from e

try:
    from agents.memory.session_settings import coerce_session_settings as _coerce_settings
    from agents.memory.session_settings import resolve_session_limit as _resolve_limit
except ImportError:  # pragma: no cover - older SDKs
    _resolve_limit = None  # type: ignore[assignment]
    _coerce_settings = None  # type: ignore[assignment]

from ._adapter_util import MAX_NS_BYTES, MAX_NS_SEGMENTS, check_ns_root, encode_segment, truncate_utf8
from .client import Client
from .errors import Forbidden, IdempotencyMismatch

__all__ = ["MnemoSession", "KIND_ITEM", "KIND_POP", "KIND_CLEAR"]

KIND_ITEM = "agents.item"
KIND_POP = "agents.pop"
KIND_CLEAR = "agents.clear"
#: Pop attempts before giving up (each failed attempt means another client popped an item).
MAX_POP_ATTEMPTS = 1000


def _render(item: Any) -> str:
    """A plain-text rendering of an input item, for the record's (FTS-indexed) content."""
    if not isinstance(item, dict):
        return json.dumps(item, ensure_ascii=False, default=str)
    kind = item.get("type")
    role = item.get("role")
    content = item.get("content")
    text: Optional[str] = None
    if isinstance(content, str):
        text = content
    elif isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict):
                for field in ("text", "refusal", "transcript"):
                    if isinstance(part.get(field), str):
                        parts.append(part[field])
                        break
            elif isinstance(part, str):
                parts.append(part)
        text = "\n".join(parts) if parts else None
    if role and text is not None:
        return f"{role}: {text}"
    if kind == "function_call":
        return f"function_call {item.get('name', '')}({item.get('arguments', '')})"
    if kind == "function_call_output":
        out = item.get("output")
        return "function_call_output " + (out if isinstance(out, str) else json.dumps(out, ensure_ascii=False, default=str))
    if kind == "reasoning" and isinstance(item.get("summary"), list):
        summary = " ".join(s.get("text", "") for s in item["summary"] if isinstance(s, dict))
        if summary.strip():
            return "reasoning: " + summary
    return json.dumps(item, ensure_ascii=False, default=str)


def _tags(item: Any) -> List[str]:
    tags: List[str] = []
    if isinstance(item, dict):
        for field in ("role", "type"):
            v = item.get(field)
            if isinstance(v, str) and 0 < len(v) <= 100:
                tags.append(f"{field}:{v}")
    return tags


class MnemoSession:
    """Conversation history of one Agents SDK session, kept in mnemod's episodic memory.

    ``MnemoSession(session_id, client=None, *, socket_path=None, agent="openai-agents",
    token=None, timeout=None, namespace="agents/sessions", session_settings=None,
    prune_on_clear=True)``. Pass it as ``session=`` to ``Runner.run``. ``client`` may be
    shared by many sessions (it is thread-safe); without one the session opens its own and
    :meth:`close` closes it. The blocking calls run in a worker thread
    (``asyncio.to_thread``), like the SDK's ``SQLiteSession``; ``*_sync`` variants are there
    for synchronous code. It implements the SDK's ``Session`` protocol (structurally, as the
    SDK asks of third-party sessions): ``isinstance(s, agents.memory.Session)`` holds.
    """

    session_settings: Optional[SessionSettings] = None

    def __init__(
        self,
        session_id: str,
        client: Optional[Client] = None,
        *,
        socket_path: Optional[str] = None,
        agent: str = "openai-agents",
        token: Optional[str] = None,
        timeout: Optional[float] = None,
        namespace: str = "agents/sessions",
        session_settings: Optional[Union[SessionSettings, Dict[str, Any]]] = None,
        prune_on_clear: bool = True,
    ) -> None:
        if not isinstance(session_id, str) or not session_id:
            raise ValueError("session_id must be a non-empty string")
        root = check_ns_root(namespace)
        self.session_id = session_id
        self.ns: str = root + "/" + encode_segment(session_id)
        if root.count("/") + 2 > MAX_NS_SEGMENTS or len(self.ns.encode()) > MAX_NS_BYTES:
            raise ValueError(f"session id {session_id!r} is too long for a Mnemo namespace under {root!r}")
        if isinstance(session_settings, dict):
            session_settings = (_coerce_settings(session_settings) if _coerce_settings is not None
                                else SessionSettings(**session_settings))
        self.session_settings = session_settings if session_settings is not None else SessionSettings()
        self.prune_on_clear = prune_on_clear
        self._owns_client = client is None
        self.client: Client = client if client is not None else Client(socket_path, agent=agent, token=token,
                                                                        timeout=timeout)
        limits = self.client.session.get("limits") or {}
        self._max_content = int(limits.get("max_episode_content_bytes", 65536))
        self._max_data = int(limits.get("max_value_bytes", 512 * 1024))
        self._page = int(limits.get("max_list_limit", 1000))
        self._closed = False

    # -- lifecycle ---------------------------------------------------------------------------
    def close(self) -> None:
        """Close the client if this session opened it; later calls raise ``RuntimeError``."""
        self._closed = True
        if self._owns_client:
            self.client.close()

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("MnemoSession is closed")

    # -- reading -------------------------------------------------------------------------------
    def _records_desc(self) -> Iterator[Dict[str, Any]]:
        """This session's records, newest first, up to (excluding) the newest clear marker."""
        cursor: Optional[str] = None
        while True:
            params: Dict[str, Any] = {"ns": self.ns, "order": "desc", "limit": self._page}
            if cursor:
                params["cursor"] = cursor
            page = self.client.call("ep.query", params)
            for rec in page.get("records", []):
                if rec.get("ns") != self.ns:
                    continue  # a namespace below ours
                if rec.get("kind") == KIND_CLEAR:
                    return
                yield rec
            cursor = page.get("cursor")
            if not cursor:
                return

    def _live_desc(self, limit: Optional[int]) -> List[Dict[str, Any]]:
        """Live item records, newest first (at most ``limit``)."""
        popped = set()
        out: List[Dict[str, Any]] = []
        if limit is not None and limit <= 0:
            return out
        for rec in self._records_desc():
            kind = rec.get("kind")
            if kind == KIND_POP:
                data = rec.get("data")
                if isinstance(data, dict) and isinstance(data.get("pop"), str):
                    popped.add(data["pop"])
            elif kind == KIND_ITEM and rec["id"] not in popped:
                out.append(rec)
                if limit is not None and len(out) >= limit:
                    break
        return out

    def _resolve_limit(self, limit: Optional[int]) -> Optional[int]:
        if _resolve_limit is not None:
            return _resolve_limit(limit, self.session_settings)
        return limit if limit is not None else (self.session_settings.limit if self.session_settings else None)

    def get_items_sync(self, limit: Optional[int] = None) -> List[Any]:
        """Blocking :meth:`get_items`."""
        self._check_open()
        n = self._resolve_limit(limit)
        if n is not None and n == 0:
            return []
        live = self._live_desc(n if n is not None and n > 0 else None)  # negative: all (as SQLiteSession)
        return [rec["data"] for rec in reversed(live)]

    async def get_items(self, limit: Optional[int] = None) -> List[Any]:
        """The history in chronological order; with ``limit``, the newest ``limit`` items."""
        return await asyncio.to_thread(self.get_items_sync, limit)

    # -- writing -------------------------------------------------------------------------------
    def _append_params(self, item: Any) -> Dict[str, Any]:
        data_bytes = len(json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
        if data_bytes > self._max_data:
            raise ValueError(f"session item of {data_bytes} bytes exceeds the daemon's max_value_bytes "
                             f"({self._max_data})")
        content = truncate_utf8(_render(item), self._max_content) or "item"
        params: Dict[str, Any] = {"ns": self.ns, "kind": KIND_ITEM, "content": content, "data": item}
        tags = _tags(item)
        if tags:
            params["tags"] = tags
        return params

    def add_items_sync(self, items: List[Any]) -> None:
        """Blocking :meth:`add_items`."""
        self._check_open()
        if not items:
            return
        calls = [("ep.append", self._append_params(item)) for item in items]  # validated before sending
        results = self.client.pipeline(calls)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            # Appends are applied one by one: take back the ones that went in, so the call
            # leaves no partial (or gapped) sequence behind, then report the failure.
            undo = [("ep.append", self._pop_params(r["id"])) for r in results if not isinstance(r, BaseException)]
            if undo:
                self.client.pipeline(undo)
            raise errors[0]

    async def add_items(self, items: List[Any]) -> None:
        """Append ``items`` (in order) to the history."""
        self._check_open()
        if not items:
            return
        await asyncio.to_thread(self.add_items_sync, list(items))

    def _pop_params(self, record_id: str) -> Dict[str, Any]:
        return {"ns": self.ns, "kind": KIND_POP, "content": f"pop {record_id}",
                "data": {"pop": record_id, "nonce": uuid.uuid4().hex},
                "derived_from": [record_id], "idempotency_key": f"pop:{record_id}"}

    def pop_item_sync(self) -> Optional[Any]:
        """Blocking :meth:`pop_item`."""
        self._check_open()
        for _ in range(MAX_POP_ATTEMPTS):
            newest = self._live_desc(1)
            if not newest:
                return None
            rec = newest[0]
            try:
                self.client.call("ep.append", self._pop_params(rec["id"]))
            except IdempotencyMismatch:
                continue  # someone else popped it first: take the next one
            return rec["data"]
        raise RuntimeError(f"MnemoSession.pop_item lost {MAX_POP_ATTEMPTS} races in a row")

    async def pop_item(self) -> Optional[Any]:
        """Remove and return the newest item (None when the session is empty)."""
        return await asyncio.to_thread(self.pop_item_sync)

    def clear_session_sync(self) -> None:
        """Blocking :meth:`clear_session`."""
        self._check_open()
        self.client.call("ep.append", {"ns": self.ns, "kind": KIND_CLEAR, "content": "session cleared",
                                       "data": {"clear": True}})
        if self.prune_on_clear:
            try:
                self.client.call("ep.prune", {"ns": self.ns,
                                              "policy": {"max_count": 0, "keep_summaries": False}})
            except Forbidden:
                pass  # the marker has cleared the session; the records stay until retention prunes them

    async def clear_session(self) -> None:
        """Remove every item of this session."""
        await asyncio.to_thread(self.clear_session_sync)

