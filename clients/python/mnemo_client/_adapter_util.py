"""Helpers shared by the framework adapters (standard library only).

* Namespace segments: Mnemo namespace segments hold only ``[A-Za-z0-9._:-]``; framework
  names (LangGraph namespace labels, Agents SDK session ids) are arbitrary strings. They are
  mapped one label -> one segment, reversibly: ``[A-Za-z0-9_:-]`` stays as it is, every
  other byte of the UTF-8 encoding (``.`` included) becomes ``.XX`` (two upper-case hex
  digits). A segment therefore never is ``.`` or ``..`` and decoding is unambiguous.
* Plans: the adapters' logic is written once, as generators that yield lists of
  ``(method, params)`` calls and receive the list of results (a result or a
  :class:`mnemo_client.MnemoError` instance per call). :func:`run_sync` drives a plan over a
  :class:`mnemo_client.Client` pipeline, :func:`run_async` over a :class:`mnemo_client.aio.AsyncClient`;
  every round is one pipelined write, so a plan's cost is its number of rounds, not calls.
  A plan may also yield a :class:`Pause` (a compare-and-set retry backing off): the driver
  sleeps that long (``time.sleep`` / ``asyncio.sleep``) and sends back an empty list.
"""
from __future__ import annotations

import asyncio
import random
import re
import time
from typing import TYPE_CHECKING, Any, Dict, Generator, List, NamedTuple, Optional, Sequence, Tuple, TypeVar, Union

if TYPE_CHECKING:  # pragma: no cover
    from .aio import AsyncClient
    from .client import Client

__all__ = ["encode_segment", "decode_segment", "Calls", "Plan", "Pause", "retry_delay", "run_sync", "run_async",
           "truncate_utf8", "MAX_NS_BYTES", "MAX_NS_SEGMENTS", "check_ns_root"]

T = TypeVar("T")
Calls = List[Tuple[str, Dict[str, Any]]]


class Pause(NamedTuple):
    """Yielded by a plan to wait ``seconds`` before its next round."""
    seconds: float


Plan = Generator[Union[Calls, Pause], List[Any], T]

#: Backoff of a compare-and-set retry: full jitter, doubling from 1 ms, capped at 50 ms.
RETRY_BASE_S = 0.001
RETRY_CAP_S = 0.05


def retry_delay(attempt: int) -> float:
    """Seconds to wait before retry number ``attempt`` (1, 2, ...) of a lost race.

    Full jitter (a uniform draw up to an exponentially growing cap) so that writers that
    collided once do not collide again in lockstep.
    """
    return random.uniform(0.0, min(RETRY_CAP_S, RETRY_BASE_S * (2 ** min(attempt, 16))))

MAX_NS_BYTES = 512
MAX_NS_SEGMENTS = 16
#: Calls per pipelined write (keeps each exchange well under the server's output limits).
PIPELINE_CHUNK = 256

_PLAIN = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_:-")
_SEGMENT_RE = re.compile(r"^[A-Za-z0-9._:-]+$")
_NS_RE = re.compile(r"^[A-Za-z0-9._:-]+(/[A-Za-z0-9._:-]+){0,15}$")


def encode_segment(label: str) -> str:
    """One arbitrary non-empty string -> one Mnemo namespace segment (reversible)."""
    if not label:
        raise ValueError("an empty name cannot be a namespace segment")
    out: List[str] = []
    for b in label.encode("utf-8"):
        out.append(chr(b) if b in _PLAIN else ".%02X" % b)
    return "".join(out)


def decode_segment(segment: str) -> Optional[str]:
    """The inverse of :func:`encode_segment`; None for a segment it cannot have produced."""
    if not _SEGMENT_RE.match(segment):
        return None
    raw = bytearray()
    i = 0
    n = len(segment)
    while i < n:
        c = segment[i]
        if c == ".":
            hx = segment[i + 1:i + 3]
            if len(hx) != 2 or not all(h in "0123456789ABCDEF" for h in hx):
                return None
            b = int(hx, 16)
            if b in _PLAIN:
                return None  # not canonical: encode_segment never escapes a plain byte
            raw.append(b)
            i += 3
        else:
            raw.append(ord(c))
            i += 1
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def check_ns_root(root: str) -> str:
    """Validate a namespace root given by the user (a Mnemo namespace)."""
    if not isinstance(root, str) or not _NS_RE.match(root) or len(root.encode()) > MAX_NS_BYTES:
        raise ValueError(f"not a Mnemo namespace: {root!r} (segments of [A-Za-z0-9._:-] separated by '/')")
    return root


def truncate_utf8(text: str, max_bytes: int) -> str:
    """``text`` cut to at most ``max_bytes`` UTF-8 bytes, on a character boundary."""
    data = text.encode("utf-8")
    if len(data) <= max_bytes:
        return text
    return data[:max_bytes].decode("utf-8", errors="ignore")


def _chunks(calls: Sequence[Tuple[str, Dict[str, Any]]]) -> List[Sequence[Tuple[str, Dict[str, Any]]]]:
    return [calls[i:i + PIPELINE_CHUNK] for i in range(0, len(calls), PIPELINE_CHUNK)]


def run_sync(client: "Client", plan: "Plan[T]") -> T:
    """Drive ``plan`` to completion over ``client`` (one pipelined exchange per round)."""
    try:
        calls = next(plan)
        while True:
            results: List[Any] = []
            if isinstance(calls, Pause):
                time.sleep(calls.seconds)
            else:
                for chunk in _chunks(calls):
                    results.extend(client.pipeline(chunk))
            calls = plan.send(results)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


async def run_async(client: "AsyncClient", plan: "Plan[T]") -> T:
    """Drive ``plan`` to completion over an asyncio client."""
    try:
        calls = next(plan)
        while True:
            results: List[Any] = []
            if isinstance(calls, Pause):
                await asyncio.sleep(calls.seconds)
            else:
                for chunk in _chunks(calls):
                    results.extend(await client.pipeline(chunk))
            calls = plan.send(results)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
