"""asyncio client for mnemod: pipelined calls on one connection, ``async for`` watches."""
from __future__ import annotations

import asyncio
import collections
import contextlib
import json
from types import TracebackType
from typing import Any, AsyncIterator, Dict, List, Mapping, Optional, Sequence, Tuple, Type, Union

from ._api import (ApiMixin, default_socket_path, encode, hello_params, merge_params, request, wait_slice_ms,
                   watch_params)
from .errors import ConnectionLost, MnemoError, error_from_response

__all__ = ["AsyncClient", "AsyncWatch"]

Call = Tuple[str, Optional[Mapping[str, Any]]]
_STREAM_LIMIT = 64 * 1024 * 1024  # the hard maximum of max_line_bytes


class _End:
    """Queued into a watch's queue when it ends (cancel or connection loss)."""

    def __init__(self, error: Optional[BaseException] = None) -> None:
        self.error = error


class AsyncClient(ApiMixin):
    """asyncio counterpart of :class:`mnemo_client.Client`.

    ``async with AsyncClient(path, agent=...) as c`` (or ``await c.connect()``). Calls from
    concurrent tasks are pipelined on the one connection; replies are matched to futures
    by id. Convenience methods return awaitables of the result dict. If the connection was
    found closed before a request is written, the client reconnects once (new socket and
    hello); a request that may have reached the server is never resent.
    """

    def __init__(self, socket_path: Optional[str] = None, agent: str = "python",
                 token: Optional[str] = None, *, timeout: Optional[float] = None) -> None:
        self.socket_path: str = socket_path if socket_path is not None else default_socket_path()
        self.agent = agent
        self.token = token
        self.timeout = timeout
        self.session: Dict[str, Any] = {}
        self._reader: Optional[asyncio.StreamReader] = None
        self._writer: Optional[asyncio.StreamWriter] = None
        self._read_task: Optional["asyncio.Task[None]"] = None
        self._pending: "collections.OrderedDict[int, asyncio.Future[Dict[str, Any]]]" = collections.OrderedDict()
        self._watch_queues: Dict[str, "asyncio.Queue[Any]"] = {}
        self._notifications: "Optional[asyncio.Queue[Dict[str, Any]]]" = None
        self._next_id = 1
        self._connected = False
        self._closed = False
        self._ever_connected = False
        self._write_lock: Optional[asyncio.Lock] = None
        self._connect_lock: Optional[asyncio.Lock] = None

    # -- connection management ------------------------------------------------------------
    async def connect(self) -> "AsyncClient":
        if self._write_lock is None:
            self._write_lock = asyncio.Lock()
            self._connect_lock = asyncio.Lock()
            self._notifications = asyncio.Queue()
        assert self._connect_lock is not None
        async with self._connect_lock:
            if not self._connected:
                await self._open()
        return self

    async def _open(self) -> None:
        try:
            reader, writer = await asyncio.open_unix_connection(self.socket_path, limit=_STREAM_LIMIT)
        except OSError as e:
            raise ConnectionLost(f"cannot connect to {self.socket_path}: {e}") from e
        self._reader, self._writer = reader, writer
        self._connected = True
        self._ever_connected = True
        self._read_task = asyncio.ensure_future(self._read_loop(reader))
        result = (await self._exchange([("session.hello", hello_params(self.agent, self.token))], reconnect=False))[0]
        if isinstance(result, BaseException):
            await self._shutdown()
            raise result
        self.session = result

    async def _read_loop(self, reader: asyncio.StreamReader) -> None:
        error: BaseException = ConnectionLost("connection closed by mnemod")
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                if not line.endswith(b"\n"):
                    break
                if not line.strip():
                    continue
                try:
                    msg = json.loads(line)
                except ValueError as e:
                    error = ConnectionLost(f"undecodable line from server: {e}")
                    break
                if isinstance(msg, dict):
                    self._dispatch(msg)
        except asyncio.CancelledError:
            error = ConnectionLost("client is closed")
        except (OSError, ValueError, asyncio.LimitOverrunError, asyncio.IncompleteReadError) as e:
            error = ConnectionLost(f"connection lost: {e}")
        finally:
            if self._closed:
                error = ConnectionLost("client is closed")
            self._connected = False
            pending, self._pending = self._pending, collections.OrderedDict()
            for fut in pending.values():
                if not fut.done():
                    fut.set_exception(error)
            for q in self._watch_queues.values():
                q.put_nowait(_End(error))
            self._watch_queues.clear()
            if self._writer is not None:
                self._writer.close()

    def _dispatch(self, msg: Dict[str, Any]) -> None:
        if "id" in msg:
            rid = msg.get("id")
            fut = self._pending.pop(rid, None) if isinstance(rid, int) else None
            if fut is None and rid is None and self._pending:
                _, fut = self._pending.popitem(last=False)  # a framing error answers the oldest
            if fut is not None and not fut.done():
                fut.set_result(msg)
            return
        params = msg.get("params")
        if msg.get("method") == "event" and isinstance(params, dict) and isinstance(params.get("watch_id"), str):
            self._watch_queue(params["watch_id"]).put_nowait(params)
        elif self._notifications is not None:
            self._notifications.put_nowait(msg)

    def _watch_queue(self, watch_id: str) -> "asyncio.Queue[Any]":
        q = self._watch_queues.get(watch_id)
        if q is None:
            q = self._watch_queues[watch_id] = asyncio.Queue()
        return q

    async def _shutdown(self) -> None:
        self._connected = False
        if self._writer is not None:
            self._writer.close()
            try:
                await self._writer.wait_closed()
            except OSError:
                pass
        if self._read_task is not None:
            self._read_task.cancel()
            try:
                await self._read_task
            except (asyncio.CancelledError, Exception):
                pass

    async def close(self) -> None:
        """Close the connection; pending and later calls raise :class:`ConnectionLost`."""
        self._closed = True
        await self._shutdown()

    @property
    def closed(self) -> bool:
        return self._closed

    async def __aenter__(self) -> "AsyncClient":
        return await self.connect()

    async def __aexit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException],
                        tb: Optional[TracebackType]) -> None:
        await self.close()

    # -- calls --------------------------------------------------------------------------------
    async def _exchange(self, calls: Sequence[Call], reconnect: bool = True) -> List[Any]:
        if self._closed:
            raise ConnectionLost("client is closed")
        if reconnect and not self._connected:
            if not self._ever_connected:
                await self.connect()
            else:
                assert self._connect_lock is not None
                async with self._connect_lock:  # nothing of this call was sent: reconnect once
                    if not self._connected and not self._closed:
                        await self._open()
        assert self._writer is not None and self._write_lock is not None
        loop = asyncio.get_running_loop()
        futs: "List[asyncio.Future[Dict[str, Any]]]" = []
        lines: List[bytes] = []
        for method, params in calls:
            rid = self._next_id
            self._next_id += 1
            fut: "asyncio.Future[Dict[str, Any]]" = loop.create_future()
            self._pending[rid] = fut
            futs.append(fut)
            lines.append(encode(request(rid, method, params)))
        try:
            async with self._write_lock:
                if not self._connected:
                    raise ConnectionLost("connection lost")
                self._writer.write(b"".join(lines))
                await self._writer.drain()
        except (OSError, ConnectionLost) as e:
            for rid in list(self._pending):
                if self._pending[rid] in futs:
                    del self._pending[rid]
            raise ConnectionLost(f"connection lost while sending: {e}") from e
        gathered = asyncio.gather(*futs)
        msgs = await (asyncio.wait_for(gathered, self.timeout) if self.timeout is not None else gathered)
        return [error_from_response(m) if "error" in m else m.get("result") for m in msgs]

    async def call(self, method: str, params: Optional[Mapping[str, Any]] = None, /, **kwparams: Any) -> Any:
        """Call ``method`` and return its result; an error response raises its typed error."""
        result = (await self._exchange([(method, merge_params(params, kwparams))]))[0]
        if isinstance(result, BaseException):
            raise result
        return result

    def _invoke(self, method: str, params: Dict[str, Any]) -> Any:
        return self.call(method, params)

    async def pipeline(self, calls: Sequence[Call]) -> List[Union[Any, MnemoError]]:
        """Send every ``(method, params)`` in one write; results (or exception instances) in order."""
        if not calls:
            return []
        return await self._exchange([(m, dict(p) if p else {}) for m, p in calls])

    async def await_barrier(self, ns: str, name: str, parties: int, *, value: Any = None,
                            ttl_ms: Optional[int] = None, wait_ms: int = 60_000) -> Any:
        """Arrive at a barrier and wait until it opens (see ``Client.await_barrier``)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_ms / 1000
        generation: Optional[int] = None
        while True:
            r = await self.arrive(ns, name, parties, value=value, generation=generation, ttl_ms=ttl_ms,
                                  wait_ms=wait_slice_ms(deadline - loop.time(), self.timeout))
            generation = r["generation"]
            if r["state"] == "open":
                return r
            if loop.time() >= deadline:
                raise TimeoutError(f"barrier {name} generation {generation}: {r['arrived']} of {parties} arrived")

    @contextlib.asynccontextmanager
    async def barrier(self, ns: str, name: str, parties: int, *, value: Any = None, ttl_ms: Optional[int] = None,
                      wait_ms: int = 60_000) -> AsyncIterator[Any]:
        """``async with client.barrier(ns, name, parties) as opened:`` runs the block once
        every party has arrived."""
        yield await self.await_barrier(ns, name, parties, value=value, ttl_ms=ttl_ms, wait_ms=wait_ms)

    async def next_notification(self, timeout: Optional[float] = None) -> Dict[str, Any]:
        """The next notification other than watch events (those go to their watch)."""
        if self._notifications is None:
            await self.connect()
        assert self._notifications is not None
        return await asyncio.wait_for(self._notifications.get(), timeout)

    def watch(self, ns: str, prefix: Optional[str] = None, from_rev: Optional[int] = None,
              tiers: Optional[Sequence[str]] = None) -> "AsyncWatch":
        """An async iterator of watch events; subscribes on ``start()``, ``async with`` or first iteration."""
        return AsyncWatch(self, ns, prefix=prefix, from_rev=from_rev, tiers=tiers)


class AsyncWatch:
    """``async for event in watch`` yields the ``params`` of this watch's ``event`` notifications."""

    def __init__(self, client: AsyncClient, ns: str, prefix: Optional[str] = None,
                 from_rev: Optional[int] = None, tiers: Optional[Sequence[str]] = None) -> None:
        self.client = client
        self._params = watch_params(ns, prefix, from_rev, tiers)
        self.watch_id: Optional[str] = None
        self.rev: Optional[int] = None
        self._queue: "Optional[asyncio.Queue[Any]]" = None
        self._done = False

    async def start(self) -> "AsyncWatch":
        if self.watch_id is None:
            res = await self.client.call("watch.subscribe", self._params)
            self.watch_id = res["watch_id"]
            self.rev = res["rev"]
            self._queue = self.client._watch_queue(res["watch_id"])
        return self

    def __aiter__(self) -> "AsyncWatch":
        return self

    async def __anext__(self) -> Dict[str, Any]:
        try:
            return await self.next()
        except _Stop:
            raise StopAsyncIteration from None

    async def next(self, timeout: Optional[float] = None) -> Dict[str, Any]:
        """The next event; :class:`asyncio.TimeoutError` after ``timeout`` seconds."""
        if self._done:
            raise _Stop()
        await self.start()
        assert self._queue is not None
        item = await asyncio.wait_for(self._queue.get(), timeout)
        if isinstance(item, _End):
            self._done = True
            if item.error is not None and not self.client.closed:
                raise item.error
            raise _Stop()
        return item

    async def cancel(self) -> None:
        if self._done or self.watch_id is None:
            self._done = True
            return
        try:
            await self.client.call("watch.cancel", {"watch_id": self.watch_id})
        except MnemoError:
            pass
        self.client._watch_queues.pop(self.watch_id, None)
        if self._queue is not None:
            self._queue.put_nowait(_End())

    async def __aenter__(self) -> "AsyncWatch":
        return await self.start()

    async def __aexit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException],
                        tb: Optional[TracebackType]) -> None:
        await self.cancel()


class _Stop(Exception):
    pass


