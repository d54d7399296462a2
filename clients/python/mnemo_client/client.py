"""Blocking, thread-safe client for mnemod."""
from __future__ import annotations

import collections
import contextlib
import json
import select
import socket
import threading
import time
from types import TracebackType
from typing import Any, Deque, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Type, Union

from ._api import (ApiMixin, default_socket_path, encode, hello_params, merge_params, request, wait_slice_ms,
                   watch_params)
from .errors import ConnectionLost, Fenced, MnemoError, error_from_response

__all__ = ["Client", "Claim", "Watch"]

Call = Tuple[str, Optional[Mapping[str, Any]]]


class _SendFailed(Exception):
    def __init__(self, line_completed: bool, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.line_completed = line_completed
        self.cause = cause


class Client(ApiMixin):
    """A connection to mnemod.

    ``Client(socket_path=None, agent="python", token=None)`` connects and sends
    ``session.hello``; the hello result is in :attr:`session`. Every method is
    thread-safe (one lock serialises a request/response exchange). ``timeout`` (seconds,
    default None: wait forever) bounds each exchange; on a timeout the connection is
    dropped (its replies would be out of step) and :class:`TimeoutError` is raised.
    """

    def __init__(
        self,
        socket_path: Optional[str] = None,
        agent: str = "python",
        token: Optional[str] = None,
        *,
        timeout: Optional[float] = None,
    ) -> None:
        self.socket_path: str = socket_path if socket_path is not None else default_socket_path()
        self.agent: str = agent
        self.token: Optional[str] = token
        self.timeout: Optional[float] = timeout
        self.session: Dict[str, Any] = {}
        self._lock = threading.RLock()
        self._sock: Optional[socket.socket] = None
        self._buf = bytearray()
        self._next_id = 1
        self._closed = False
        self._notifications: Deque[Dict[str, Any]] = collections.deque()
        with self._lock:
            self._connect()

    # -- connection management ------------------------------------------------------------
    def _connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(self.socket_path)
        except OSError as e:
            sock.close()
            raise ConnectionLost(f"cannot connect to {self.socket_path}: {e}") from e
        self._sock = sock
        self._buf = bytearray()
        result = self._exchange([("session.hello", hello_params(self.agent, self.token))], reconnect=False)[0]
        if isinstance(result, BaseException):
            self._drop()
            raise result
        self.session = result

    def _drop(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass

    def _peer_gone(self) -> bool:
        """Non-blocking check (before sending) whether the server closed the connection."""
        assert self._sock is not None
        try:
            self._sock.settimeout(0.0)  # with a timeout set, recv would poll first
            chunk = self._sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            return True
        if not chunk:
            return True
        self._buf += chunk  # e.g. notifications that arrived meanwhile
        return False

    def close(self) -> None:
        """Close the connection; later calls raise :class:`ConnectionLost`."""
        self._closed = True
        sock = self._sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked reading
            except OSError:
                pass
        with self._lock:
            self._drop()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        self.close()

    # -- framing ----------------------------------------------------------------------------
    def _send(self, data: bytes) -> None:
        """Write ``data``, reading replies into the buffer meanwhile (a long pipeline
        cannot deadlock against a server that stops reading until we read)."""
        assert self._sock is not None
        sock = self._sock
        view = memoryview(data)
        sent = 0
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        try:
            sock.settimeout(0.0)
            while sent < len(data):
                try:
                    sent += sock.send(view[sent:])
                    continue
                except (BlockingIOError, InterruptedError):
                    pass
                wait = None if deadline is None else max(0.0, deadline - time.monotonic())
                readable, writable, _ = select.select([sock], [sock], [], wait)
                if not readable and not writable:
                    raise socket.timeout("send timed out")
                if readable:
                    chunk = sock.recv(1 << 16)
                    if not chunk:
                        raise ConnectionResetError("connection closed by mnemod")
                    self._buf += chunk
        except OSError as e:
            raise _SendFailed(b"\n" in data[:sent], e) from e

    def _read_message(self, timeout: Optional[float]) -> Any:
        """Read one JSON line (blocking up to ``timeout``); the lock must be held."""
        while True:
            nl = self._buf.find(b"\n")
            if nl >= 0:
                line = bytes(self._buf[:nl])
                del self._buf[: nl + 1]
                if not line.strip():
                    continue
                try:
                    return json.loads(line)
                except ValueError as e:
                    self._drop()
                    raise ConnectionLost(f"undecodable line from server: {e}") from e
            if self._sock is None:
                raise ConnectionLost("client is closed" if self._closed else "not connected")
            try:
                self._sock.settimeout(timeout)
                chunk = self._sock.recv(1 << 16)
            except socket.timeout as e:
                self._drop()
                raise TimeoutError("no reply from mnemod in time; connection dropped") from e
            except OSError as e:
                self._drop()
                raise ConnectionLost(f"connection lost: {e}") from e
            if not chunk:
                self._drop()
                raise ConnectionLost("client is closed" if self._closed else "connection closed by mnemod")
            self._buf += chunk

    def _exchange(self, calls: Sequence[Call], reconnect: bool = True) -> List[Any]:
        with self._lock:
            if self._closed:
                raise ConnectionLost("client is closed")
            if reconnect and (self._sock is None or self._peer_gone()):
                # Nothing of this exchange was sent yet: safe to reconnect once.
                self._drop()
                self._connect()
            ids: List[int] = []
            lines: List[bytes] = []
            for method, params in calls:
                rid = self._next_id
                self._next_id += 1
                ids.append(rid)
                lines.append(encode(request(rid, method, params)))
            data = b"".join(lines)
            try:
                self._send(data)
            except _SendFailed as e:
                self._drop()
                if not reconnect or e.line_completed:
                    raise ConnectionLost(f"connection lost while sending: {e.cause}") from e.cause
                self._connect()  # no complete line reached the server: nothing was applied
                try:
                    self._send(data)
                except _SendFailed as e2:
                    self._drop()
                    raise ConnectionLost(f"connection lost while sending: {e2.cause}") from e2.cause
            slot = {rid: i for i, rid in enumerate(ids)}
            results: List[Any] = [None] * len(ids)
            done = [False] * len(ids)
            remaining = len(ids)
            while remaining:
                msg = self._read_message(self.timeout)
                if not isinstance(msg, dict):
                    continue  # we never send batches
                if "id" not in msg:
                    if "method" in msg:
                        self._notifications.append(msg)
                    continue
                rid = msg.get("id")
                i = slot.get(rid) if isinstance(rid, int) else None
                if i is None:
                    # id null (a framing error): it answers the oldest outstanding request.
                    i = done.index(False)
                if done[i]:
                    continue
                done[i] = True
                remaining -= 1
                results[i] = error_from_response(msg) if "error" in msg else msg.get("result")
            return results

    # -- public calls -------------------------------------------------------------------------
    def call(self, method: str, params: Optional[Mapping[str, Any]] = None, /, **kwparams: Any) -> Any:
        """Call ``method`` and return its result; an error response raises its typed error."""
        result = self._exchange([(method, merge_params(params, kwparams))])[0]
        if isinstance(result, BaseException):
            raise result
        return result

    def _invoke(self, method: str, params: Dict[str, Any]) -> Any:
        return self.call(method, params)

    def pipeline(self, calls: Sequence[Call]) -> List[Union[Any, MnemoError]]:
        """Send every ``(method, params)`` in one write; return results (or exception instances) in order."""
        if not calls:
            return []
        return self._exchange([(m, dict(p) if p else {}) for m, p in calls])

    def notifications(self) -> List[Dict[str, Any]]:
        """Drain and return the notifications received so far on this connection."""
        with self._lock:
            out = list(self._notifications)
            self._notifications.clear()
            return out

    def next_notification(self, timeout: Optional[float] = None) -> Dict[str, Any]:
        """Return the next notification, reading from the socket if none is queued.

        Raises :class:`TimeoutError` after ``timeout`` seconds (the connection stays usable).
        """
        with self._lock:
            while True:
                if self._notifications:
                    return self._notifications.popleft()
                if self._closed:
                    raise ConnectionLost("client is closed")
                if self._sock is None:
                    raise ConnectionLost("not connected")
                if timeout is not None and b"\n" not in self._buf:
                    ready, _, _ = select.select([self._sock], [], [], timeout)
                    if not ready:
                        raise TimeoutError("no notification in time")
                msg = self._read_message(None)
                if isinstance(msg, dict) and "id" not in msg and "method" in msg:
                    return msg

    # -- helpers ------------------------------------------------------------------------------
    def claim(self, ns: str, resource: str, ttl_ms: int, wait_ms: int = 0,
              renew_every: Optional[float] = None) -> "Claim":
        """A context manager holding a claim; see :class:`Claim`."""
        return Claim(self, ns, resource, ttl_ms, wait_ms=wait_ms, renew_every=renew_every)

    def await_barrier(self, ns: str, name: str, parties: int, *, value: Any = None, ttl_ms: Optional[int] = None,
                      wait_ms: int = 60_000) -> Any:
        """Arrive at a barrier and wait until it opens; returns the reply with every party's
        value. When one call's wait ends first, asks again about the same generation (never
        arriving at the next). Raises :class:`mnemo_client.errors.Broken` if the generation breaks,
        :class:`TimeoutError` if it is still waiting after ``wait_ms``."""
        deadline = time.monotonic() + wait_ms / 1000
        generation: Optional[int] = None
        while True:
            r = self.arrive(ns, name, parties, value=value, generation=generation, ttl_ms=ttl_ms,
                            wait_ms=wait_slice_ms(deadline - time.monotonic(), self.timeout))
            generation = r["generation"]
            if r["state"] == "open":
                return r
            if time.monotonic() >= deadline:
                raise TimeoutError(f"barrier {name} generation {generation}: {r['arrived']} of {parties} arrived")

    @contextlib.contextmanager
    def barrier(self, ns: str, name: str, parties: int, *, value: Any = None, ttl_ms: Optional[int] = None,
                wait_ms: int = 60_000) -> Iterator[Any]:
        """``with client.barrier(ns, name, parties) as opened:`` runs the block once every
        party has arrived (``opened`` is the reply; see :meth:`await_barrier`)."""
        yield self.await_barrier(ns, name, parties, value=value, ttl_ms=ttl_ms, wait_ms=wait_ms)

    def watch(self, ns: str, prefix: Optional[str] = None, from_rev: Optional[int] = None,
              tiers: Optional[Sequence[str]] = None) -> "Watch":
        """Subscribe (on a connection of its own) and return an iterator of event dicts."""
        return Watch(self, ns, prefix=prefix, from_rev=from_rev, tiers=tiers)

    def _sibling(self) -> "Client":
        return Client(self.socket_path, self.agent, self.token, timeout=self.timeout)


class Claim:
    """Holds a claim while the ``with`` block runs.

    On enter it acquires (raising :class:`mnemo_client.errors.Claimed` if held elsewhere after
    ``wait_ms``), then renews it on a connection of its own every ``renew_every``
    milliseconds (default ``ttl_ms / 3``); on exit it stops renewing and releases it with
    its token. :attr:`token` is the fencing token and :attr:`fence` the
    ``{"resource", "token"}`` object for ``fence=``/``lease=`` parameters. If a renewal is
    refused with FENCED the claim is lost: :attr:`lost` becomes True and renewing stops.
    """

    def __init__(self, client: Client, ns: str, resource: str, ttl_ms: int, wait_ms: int = 0,
                 renew_every: Optional[float] = None) -> None:
        self.client = client
        self.ns = ns
        self.resource = resource
        self.ttl_ms = ttl_ms
        self.wait_ms = wait_ms
        self.renew_every_ms: float = float(renew_every) if renew_every is not None else ttl_ms / 3.0
        self.token: Optional[int] = None
        self.expires_at: Optional[str] = None
        self.lost = False
        self.renewals = 0
        self.last_error: Optional[BaseException] = None
        self.released: Optional[bool] = None
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._renewer: Optional[Client] = None

    @property
    def fence(self) -> Dict[str, Any]:
        return {"resource": self.resource, "token": self.token}

    def __enter__(self) -> "Claim":
        res = self.client.acquire(self.ns, self.resource, self.ttl_ms, wait_ms=self.wait_ms or None)
        self.token = res["token"]
        self.expires_at = res.get("expires_at")
        try:
            self._renewer = self.client._sibling()
        except BaseException:
            self._release()
            raise
        self._thread = threading.Thread(target=self._run, name=f"mnemo-renew-{self.resource}", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        assert self._renewer is not None and self.token is not None
        while not self._stop.wait(self.renew_every_ms / 1000.0):
            try:
                res = self._renewer.renew(self.ns, self.resource, self.token, self.ttl_ms)
                self.expires_at = res.get("expires_at", self.expires_at)
                self.renewals += 1
            except Fenced as e:
                self.lost = True
                self.last_error = e
                return
            except (MnemoError, TimeoutError, OSError) as e:  # try again next tick (reconnects)
                self.last_error = e

    def _release(self) -> None:
        if self.token is not None:
            self.released = bool(self.client.release(self.ns, self.resource, self.token).get("released"))

    def __exit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._renewer is not None:
            self._renewer.close()
        try:
            self._release()
        except MnemoError:
            if exc_type is None:
                raise


class Watch(Iterator[Dict[str, Any]]):
    """An iterator of watch events (the ``params`` of ``event`` notifications).

    Runs on a connection of its own. ``next(timeout=...)`` waits at most ``timeout``
    seconds (:class:`TimeoutError`); :meth:`cancel` (also from another thread) ends the
    iteration. Usable as a context manager (cancels on exit).
    """

    def __init__(self, client: Client, ns: str, prefix: Optional[str] = None,
                 from_rev: Optional[int] = None, tiers: Optional[Sequence[str]] = None) -> None:
        self._conn = client._sibling()
        self._cancelled = False
        try:
            res = self._conn.call("watch.subscribe", watch_params(ns, prefix, from_rev, tiers))
        except BaseException:
            self._conn.close()
            raise
        self.watch_id: str = res["watch_id"]
        self.rev: int = res["rev"]

    def __iter__(self) -> "Watch":
        return self

    def __next__(self) -> Dict[str, Any]:
        return self.next()

    def next(self, timeout: Optional[float] = None) -> Dict[str, Any]:
        while True:
            if self._cancelled:
                raise StopIteration
            try:
                msg = self._conn.next_notification(timeout)
            except ConnectionLost:
                if self._cancelled:
                    raise StopIteration from None
                raise
            params = msg.get("params")
            if msg.get("method") == "event" and isinstance(params, dict) and params.get("watch_id") == self.watch_id:
                return params

    def cancel(self) -> None:
        """Cancel the watch and close its connection."""
        if self._cancelled:
            return
        self._cancelled = True
        if self._conn._lock.acquire(blocking=False):
            try:
                try:
                    self._conn.call("watch.cancel", {"watch_id": self.watch_id})
                except (MnemoError, TimeoutError, OSError):
                    pass
            finally:
                self._conn._lock.release()
        self._conn.close()  # wakes an iterating thread

    def __enter__(self) -> "Watch":
        return self

    def __exit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        self.cancel()
