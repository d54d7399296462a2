"""Pieces shared by the sync and the asyncio client: socket path, framing, convenience API."""
from __future__ import annotations

import datetime as _dt
import json
import os
from typing import Any, Dict, Mapping, Optional, Sequence, Union

__all__ = ["default_socket_path", "encode", "ApiMixin"]

CLIENT_NAME = "mnemo-py/0.1.0"


def timestamp(when: Union[_dt.datetime, float, int]) -> str:
    """The wire's one time form, RFC 3339 UTC with milliseconds (``2026-12-01T00:00:00.000Z``),
    of a datetime (a naive one is taken as UTC) or of seconds since the Unix epoch."""
    if isinstance(when, _dt.datetime):
        if when.tzinfo is None:
            when = when.replace(tzinfo=_dt.timezone.utc)
        ms = int(round(when.timestamp() * 1000))
    else:
        ms = int(round(float(when) * 1000))
    seconds, millis = divmod(ms, 1000)
    base = _dt.datetime.fromtimestamp(seconds, tz=_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{millis:03d}Z"


def default_socket_path() -> str:
    """$MNEMO_SOCKET, else $XDG_RUNTIME_DIR/mnemo/mnemo.sock, else ./mnemo.sock."""
    path = os.environ.get("MNEMO_SOCKET")
    if path:
        return path
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return os.path.join(runtime, "mnemo", "mnemo.sock")
    return "./mnemo.sock"


def encode(obj: Any) -> bytes:
    """One JSON-RPC line (compact, UTF-8, newline-terminated)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n"


def request(req_id: int, method: str, params: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    msg: Dict[str, Any] = {"jsonrpc": "2.0", "id": req_id, "method": method}
    if params:
        msg["params"] = dict(params)
    return msg


def hello_params(agent: str, token: Optional[str]) -> Dict[str, Any]:
    p: Dict[str, Any] = {"agent": agent, "client": CLIENT_NAME}
    if token is not None:
        p["token"] = token
    return p


def wait_slice_ms(seconds_left: float, client_timeout: Optional[float]) -> int:
    """How long one parked call may wait: what is left, but short of the client's own timeout."""
    ms = max(0, int(seconds_left * 1000))
    if client_timeout is not None:
        ms = min(ms, max(0, int(client_timeout * 1000) - 500))
    return ms


def _clean(**params: Any) -> Dict[str, Any]:
    """Drop parameters left at None (the contract treats null as absent anyway)."""
    return {k: v for k, v in params.items() if v is not None}


class ApiMixin:
    """Convenience methods mirroring the contract.

    Each returns whatever ``self._invoke(method, params)`` returns: the result dict for the
    sync :class:`mnemo_client.Client`, an awaitable of it for :class:`mnemo_client.aio.AsyncClient`.
    """

    def _invoke(self, method: str, params: Dict[str, Any]) -> Any:  # pragma: no cover
        raise NotImplementedError

    # -- admin ---------------------------------------------------------------------------
    def health(self) -> Any:
        return self._invoke("admin.health", {})

    def stats(self) -> Any:
        return self._invoke("admin.stats", {})

    # -- working memory --------------------------------------------------------------------
    def set(
        self,
        ns: str,
        key: str,
        value: Any,
        *,
        ttl_ms: Optional[int] = None,
        if_version: Optional[int] = None,
        if_absent: Optional[bool] = None,
        lease: Optional[Mapping[str, Any]] = None,
        fence: Optional[Mapping[str, Any]] = None,
        task: Optional[str] = None,
        derived_from: Optional[Sequence[str]] = None,
    ) -> Any:
        params = _clean(ns=ns, key=key, ttl_ms=ttl_ms, if_version=if_version, if_absent=if_absent,
                        lease=lease, fence=fence, task=task, derived_from=derived_from)
        params["value"] = value  # null is a legal value
        return self._invoke("wm.set", params)

    def get(self, ns: str, key: str, *, min_rev: Optional[int] = None, consistency: Optional[str] = None) -> Any:
        """``min_rev``: answered once the node applied that revision (another agent's write's
        ``rev``); ``consistency="linearizable"``: the cluster's latest state (see
        docs/cluster.md). Both are accepted by every read below."""
        return self._invoke("wm.get", _clean(ns=ns, key=key, min_rev=min_rev, consistency=consistency))

    def delete(self, ns: str, key: str, *, if_version: Optional[int] = None,
               fence: Optional[Mapping[str, Any]] = None) -> Any:
        return self._invoke("wm.del", _clean(ns=ns, key=key, if_version=if_version, fence=fence))

    def list(self, ns: str, *, prefix: Optional[str] = None, limit: Optional[int] = None,
             cursor: Optional[str] = None, min_rev: Optional[int] = None, consistency: Optional[str] = None) -> Any:
        return self._invoke("wm.list", _clean(ns=ns, prefix=prefix, limit=limit, cursor=cursor, min_rev=min_rev,
                                              consistency=consistency))

    def expire(self, ns: str, key: str, ttl_ms: Optional[int]) -> Any:
        """Set the TTL (ms from now) or remove it (``ttl_ms=None``)."""
        return self._invoke("wm.expire", {"ns": ns, "key": key, "ttl_ms": ttl_ms})

    def clear(self, ns: str) -> Any:
        return self._invoke("wm.clear", {"ns": ns})

    def txn(self, ops: Sequence[Mapping[str, Any]],
            compare: Optional[Sequence[Mapping[str, Any]]] = None) -> Any:
        params: Dict[str, Any] = {"ops": [dict(o) for o in ops]}
        if compare:
            params["compare"] = [dict(c) for c in compare]
        return self._invoke("wm.txn", params)

    # -- coordination ------------------------------------------------------------------------
    def acquire(self, ns: str, resource: str, ttl_ms: int, *, wait_ms: Optional[int] = None) -> Any:
        return self._invoke("claim.acquire", _clean(ns=ns, resource=resource, ttl_ms=ttl_ms, wait_ms=wait_ms))

    def renew(self, ns: str, resource: str, token: int, ttl_ms: int) -> Any:
        return self._invoke("claim.renew", {"ns": ns, "resource": resource, "token": token, "ttl_ms": ttl_ms})

    def release(self, ns: str, resource: str, token: int) -> Any:
        return self._invoke("claim.release", {"ns": ns, "resource": resource, "token": token})

    def claims(self, ns: str, *, min_rev: Optional[int] = None, consistency: Optional[str] = None) -> Any:
        return self._invoke("claim.list", _clean(ns=ns, min_rev=min_rev, consistency=consistency))

    # -- agreement ---------------------------------------------------------------------------
    def arrive(self, ns: str, name: str, parties: int, *, value: Any = None, generation: Optional[int] = None,
               ttl_ms: Optional[int] = None, wait_ms: Optional[int] = None) -> Any:
        """``barrier.arrive``: ``state`` is ``open`` (with every party's value) or ``waiting``.
        Ask again with ``generation`` (from the reply) after a lost reply or a timeout."""
        return self._invoke("barrier.arrive", _clean(ns=ns, name=name, parties=parties, value=value,
                                                     generation=generation, ttl_ms=ttl_ms, wait_ms=wait_ms))

    def barrier_get(self, ns: str, name: str) -> Any:
        return self._invoke("barrier.get", {"ns": ns, "name": name})

    def barriers(self, ns: str) -> Any:
        return self._invoke("barrier.list", {"ns": ns})

    def vote_open(self, ns: str, proposal: str, *, voters: Optional[Sequence[str]] = None,
                  quorum: Optional[int] = None, ttl_ms: Optional[int] = None, payload: Any = None) -> Any:
        return self._invoke("vote.open", _clean(ns=ns, proposal=proposal, voters=list(voters) if voters else None,
                                                quorum=quorum, ttl_ms=ttl_ms, payload=payload))

    def vote(self, ns: str, proposal: str, choice: str, *, reason: Optional[str] = None) -> Any:
        """``vote.cast`` with ``choice`` ``"yes"`` or ``"no"``."""
        return self._invoke("vote.cast", _clean(ns=ns, proposal=proposal, choice=choice, reason=reason))

    def vote_get(self, ns: str, proposal: str, *, wait_ms: Optional[int] = None) -> Any:
        """``vote.get``; with ``wait_ms`` it waits while the round is open."""
        return self._invoke("vote.get", _clean(ns=ns, proposal=proposal, wait_ms=wait_ms))

    def campaign(self, ns: str, election: str, ttl_ms: int, *, value: Any = None,
                 wait_ms: Optional[int] = None) -> Any:
        """``leader.campaign``: ``{"leader": True, "token": ...}`` or who leads. Campaign
        again before the lease ends to stay leader (same token)."""
        return self._invoke("leader.campaign", _clean(ns=ns, election=election, ttl_ms=ttl_ms, value=value,
                                                      wait_ms=wait_ms))

    def leader(self, ns: str, election: str) -> Any:
        return self._invoke("leader.get", {"ns": ns, "election": election})

    def resign(self, ns: str, election: str, token: int) -> Any:
        return self._invoke("leader.resign", {"ns": ns, "election": election, "token": token})

    def put_result(self, ns: str, task: str, idempotency_key: str, value: Any) -> Any:
        return self._invoke("result.put", {"ns": ns, "task": task, "idempotency_key": idempotency_key,
                                           "value": value})

    def transition(self, ns: str, task: str, to: str, *, from_: Optional[str] = None,
                   fence: Optional[Mapping[str, Any]] = None) -> Any:
        """``task.transition``; ``from_`` is the contract's ``from`` (a Python keyword)."""
        params = _clean(ns=ns, task=task, to=to, fence=fence)
        if from_ is not None:
            params["from"] = from_
        return self._invoke("task.transition", params)

    def task(self, ns: str, task: str, *, min_rev: Optional[int] = None, consistency: Optional[str] = None) -> Any:
        return self._invoke("task.get", _clean(ns=ns, task=task, min_rev=min_rev, consistency=consistency))

    def post(self, ns: str, to: str, type: str, content: Any) -> Any:  # noqa: A002 (contract name)
        return self._invoke("inbox.post", {"ns": ns, "to": to, "type": type, "content": content})

    def read_inbox(self, ns: str, *, unacked_only: Optional[bool] = None, limit: Optional[int] = None,
                   min_rev: Optional[int] = None, consistency: Optional[str] = None) -> Any:
        return self._invoke("inbox.read", _clean(ns=ns, unacked_only=unacked_only, limit=limit, min_rev=min_rev,
                                                 consistency=consistency))

    def ack(self, ns: str, ids: Sequence[str]) -> Any:
        return self._invoke("inbox.ack", {"ns": ns, "ids": list(ids)})


    # -- semantic memory ------------------------------------------------------------------------
    def sem_upsert(
        self,
        ns: str,
        text: str,
        *,
        id: Optional[str] = None,  # noqa: A002 (contract name)
        vector: Optional[Sequence[float]] = None,
        vector_b64: Optional[str] = None,
        data: Any = None,
        tags: Optional[Sequence[str]] = None,
        confidence: Optional[float] = None,
        supersedes: Optional[str] = None,
        ttl_ms: Optional[int] = None,
        dedupe: Optional[str] = None,
        on_conflict: Optional[str] = None,
        valid_from: Optional[str] = None,
        valid_to: Optional[str] = None,
    ) -> Any:
        """``sem.upsert``. ``dedupe``: ``"none"`` (the server's default), ``"report"`` (list
        near-duplicates in ``similar``) or ``"merge"`` (update the best near-duplicate
        instead of adding a record); sent as given, so the server judges the value.
        ``on_conflict``: ``"supersede"``, ``"keep_both"`` or ``"reject"`` (a near-duplicate
        stating something else: supersede it, keep both, or raise ``Conflict``).
        ``valid_from``/``valid_to``: when the fact held, RFC 3339 with milliseconds
        (``"2026-12-01T00:00:00.000Z"``; :func:`mnemo_client.timestamp` makes one)."""
        return self._invoke("sem.upsert", _clean(
            ns=ns, text=text, id=id, vector=list(vector) if vector is not None else None,
            vector_b64=vector_b64, data=data, tags=list(tags) if tags is not None else None,
            confidence=confidence, supersedes=supersedes, ttl_ms=ttl_ms, dedupe=dedupe,
            on_conflict=on_conflict, valid_from=valid_from, valid_to=valid_to))

    def sem_search(
        self,
        ns: str,
        text: Optional[str] = None,
        *,
        vector: Optional[Sequence[float]] = None,
        vector_b64: Optional[str] = None,
        k: Optional[int] = None,
        mode: Optional[str] = None,
        fusion: Optional[str] = None,
        filter: Optional[Mapping[str, Any]] = None,  # noqa: A002 (contract name)
        min_score: Optional[float] = None,
        include_superseded: Optional[bool] = None,
        as_of: Optional[str] = None,
        include_history: Optional[bool] = None,
        min_rev: Optional[int] = None,
        consistency: Optional[str] = None,
    ) -> Any:
        """``sem.search`` under the namespace prefix ``ns`` with ``text`` (or ``vector``/
        ``vector_b64``). ``mode``: ``"vector"``, ``"keyword"`` or ``"hybrid"``; ``None`` lets
        the server pick its default. ``fusion`` (hybrid): ``"minmax"`` (the server's default)
        or ``"rrf"``. The result is returned as the server sent it (each hit's
        ``match`` and ``score``, and ``skipped``/``truncated`` when present). ``as_of``
        (RFC 3339): what was believed valid then; ``include_history``: past versions too."""
        return self._invoke("sem.search", _clean(
            ns=ns, text=text, vector=list(vector) if vector is not None else None,
            vector_b64=vector_b64, k=k, mode=mode, fusion=fusion, filter=dict(filter) if filter is not None else None,
            min_score=min_score, include_superseded=include_superseded, as_of=as_of,
            include_history=include_history, min_rev=min_rev, consistency=consistency))

    search = sem_search  # the short name

    def sem_get(self, ns: str, id: str, *, as_of: Optional[str] = None,  # noqa: A002 (contract name)
                include_history: Optional[bool] = None, min_rev: Optional[int] = None,
                consistency: Optional[str] = None) -> Any:
        """``sem.get``; with ``as_of`` the version valid then, with ``include_history``
        its past versions in ``history``."""
        return self._invoke("sem.get", _clean(ns=ns, id=id, as_of=as_of, include_history=include_history,
                                              min_rev=min_rev, consistency=consistency))

    def sem_history(self, ns: str, id: str, *, min_rev: Optional[int] = None,  # noqa: A002 (contract name)
                    consistency: Optional[str] = None) -> Any:
        """``sem.history``: the record's versions, newest first (``found`` false when absent)."""
        return self._invoke("sem.history", _clean(ns=ns, id=id, min_rev=min_rev, consistency=consistency))

    def sem_delete(self, ns: str, id: str) -> Any:  # noqa: A002 (contract name)
        return self._invoke("sem.delete", {"ns": ns, "id": id})

    # -- episodic memory ------------------------------------------------------------------------
    def ep_append(
        self,
        ns: str,
        kind: str,
        content: str,
        *,
        data: Any = None,
        task: Optional[str] = None,
        tags: Optional[Sequence[str]] = None,
        idempotency_key: Optional[str] = None,
        derived_from: Optional[Sequence[str]] = None,
        embed: Optional[bool] = None,
    ) -> Any:
        """``ep.append``; ``embed=True`` asks the server to embed ``content`` as well, so that
        ``ep_search`` in ``"vector"``/``"hybrid"`` mode can find the episode by meaning."""
        return self._invoke("ep.append", _clean(
            ns=ns, kind=kind, content=content, data=data, task=task,
            tags=list(tags) if tags is not None else None, idempotency_key=idempotency_key,
            derived_from=list(derived_from) if derived_from is not None else None, embed=embed))

    def ep_query(
        self,
        ns: str,
        *,
        since: Optional[str] = None,
        until: Optional[str] = None,
        kind: Optional[str] = None,
        agent: Optional[str] = None,
        task: Optional[str] = None,
        tags: Optional[Sequence[str]] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
        order: Optional[str] = None,
        min_rev: Optional[int] = None,
        consistency: Optional[str] = None,
    ) -> Any:
        return self._invoke("ep.query", _clean(
            ns=ns, since=since, until=until, kind=kind, agent=agent, task=task,
            tags=list(tags) if tags is not None else None, limit=limit, cursor=cursor, order=order,
            min_rev=min_rev, consistency=consistency))

    def ep_search(self, ns: str, text: str, *, limit: Optional[int] = None, mode: Optional[str] = None,
                  fusion: Optional[str] = None, min_rev: Optional[int] = None, consistency: Optional[str] = None) -> Any:
        """``ep.search`` under the namespace prefix ``ns``. ``mode``: ``"keyword"`` (FTS5
        bm25), ``"vector"`` (episodes appended with ``embed=True``) or ``"hybrid"``; ``None``
        lets the server pick its default; ``fusion`` as for ``sem_search``. Hits are returned
        as sent (``match`` included)."""
        return self._invoke("ep.search", _clean(ns=ns, text=text, limit=limit, mode=mode, fusion=fusion,
                                                min_rev=min_rev, consistency=consistency))

    def ep_summarize(self, ns: str, *, older_than_ms: Optional[int] = None, max_records: Optional[int] = None) -> Any:
        """``ep.summarize``: condenses the namespace's records not yet summarized (older than
        ``older_than_ms``, at most ``max_records``) into summary records; sources are kept."""
        return self._invoke("ep.summarize", _clean(ns=ns, older_than_ms=older_than_ms, max_records=max_records))

    def ep_pin(self, ids: Sequence[str], pinned: bool = True) -> Any:
        """``ep.pin``: protects records from pruning (``pinned=False`` lifts it)."""
        return self._invoke("ep.pin", {"ids": list(ids), "pinned": pinned})

    # -- administration (need ``a``) ----------------------------------------------------------
    def audit_query(self, *, ns: Optional[str] = None, agent: Optional[str] = None, since: Optional[str] = None,
                    limit: Optional[int] = None) -> Any:
        """``audit.query``: denials, and mutations when principals are configured."""
        return self._invoke("audit.query", _clean(ns=ns, agent=agent, since=since, limit=limit))

    def export_file(self, path: str, *, ns: Optional[str] = None, tiers: Optional[Sequence[str]] = None) -> Any:
        """``admin.export`` with ``path``: mnemod writes the JSONL file itself, a name in its
        transfer directory (never over an existing one), and answers with counts."""
        return self._invoke("admin.export", _clean(path=path, ns=ns, tiers=list(tiers) if tiers is not None else None))

    def import_file(self, path: str, *, dry_run: Optional[bool] = None,
                    remap: Optional[Sequence[Mapping[str, str]]] = None) -> Any:
        """``admin.import`` of a file in mnemod's transfer directory; idempotent by id."""
        return self._invoke("admin.import", _clean(path=path, dry_run=dry_run,
                                                   remap=[dict(r) for r in remap] if remap is not None else None))

    def import_lines(self, lines: Sequence[Mapping[str, Any]], *, dry_run: Optional[bool] = None,
                     remap: Optional[Sequence[Mapping[str, str]]] = None) -> Any:
        """``admin.import`` of an export's lines sent in this one call (header first), each
        the JSON object of one line; for large exports use the CLI, which streams them."""
        return self._invoke("admin.import", _clean(lines=[dict(x) for x in lines], dry_run=dry_run,
                                                   remap=[dict(r) for r in remap] if remap is not None else None))

    def snapshot(self, path: str) -> Any:
        """``admin.snapshot``: a consistent online copy of the store, a new directory in
        mnemod's transfer directory."""
        return self._invoke("admin.snapshot", {"path": path})

    def check(self, *, full: Optional[bool] = None) -> Any:
        """``admin.check``: checks the stored data (``full``: SQLite's integrity_check)."""
        return self._invoke("admin.check", _clean(full=full))


def watch_params(ns: str, prefix: Optional[str], from_rev: Optional[int],
                 tiers: Optional[Sequence[str]]) -> Dict[str, Any]:
    return _clean(ns=ns, prefix=prefix, from_rev=from_rev, tiers=list(tiers) if tiers else None)


def merge_params(params: Optional[Mapping[str, Any]], kw: Mapping[str, Any]) -> Dict[str, Any]:
    out: Dict[str, Any] = dict(params) if params else {}
    out.update(kw)
    return out

