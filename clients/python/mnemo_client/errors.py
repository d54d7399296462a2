"""Typed errors for the Mnemo wire contract (JSON-RPC 2.0 error objects)."""
from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Type

__all__ = [
    "MnemoError",
    "ParseError",
    "InvalidRequest",
    "MethodNotFound",
    "InvalidParams",
    "InternalError",
    "ApplicationError",
    "Unauthenticated",
    "Forbidden",
    "NotFound",
    "Conflict",
    "Claimed",
    "Fenced",
    "IdempotencyMismatch",
    "InvalidTransition",
    "DimensionMismatch",
    "LimitExceeded",
    "Unavailable",
    "ShuttingDown",
    "Corrupt",
    "ConnectionLost",
    "error_from_response",
]


class MnemoError(Exception):
    """Base class of every error raised by the client.

    ``code`` is the JSON-RPC error code, ``name`` the application error name
    (``data.code``, e.g. ``"CONFLICT"``) or None, ``data`` the error's data object
    (``{}`` when absent) and ``message`` the server's message.
    """

    code: int = 0
    name: Optional[str] = None

    def __init__(
        self,
        message: str = "",
        code: Optional[int] = None,
        data: Optional[Dict[str, Any]] = None,
        name: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.message: str = message
        if code is not None:
            self.code = code
        self.data: Dict[str, Any] = dict(data) if data else {}
        if name is not None:
            self.name = name
        elif isinstance(self.data.get("code"), str):
            self.name = self.data["code"]

    def __str__(self) -> str:
        label = self.name if self.name else str(self.code)
        return f"{label}: {self.message}" if self.message else label

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code}, name={self.name!r}, message={self.message!r}, data={self.data!r})"


class ParseError(MnemoError):
    code = -32700


class InvalidRequest(MnemoError):
    code = -32600


class MethodNotFound(MnemoError):
    code = -32601


class InvalidParams(MnemoError):
    code = -32602


class InternalError(MnemoError):
    code = -32603


class ApplicationError(MnemoError):
    """An application error (code -32000); subclasses per ``data.code``."""

    code = -32000


class Unauthenticated(ApplicationError):
    name = "UNAUTHENTICATED"


class Forbidden(ApplicationError):
    name = "FORBIDDEN"


class NotFound(ApplicationError):
    name = "NOT_FOUND"


class Conflict(ApplicationError):
    name = "CONFLICT"


class Claimed(ApplicationError):
    name = "CLAIMED"


class Fenced(ApplicationError):
    name = "FENCED"


class IdempotencyMismatch(ApplicationError):
    name = "IDEMPOTENCY_MISMATCH"


class InvalidTransition(ApplicationError):
    name = "INVALID_TRANSITION"


class DimensionMismatch(ApplicationError):
    name = "DIMENSION_MISMATCH"


class LimitExceeded(ApplicationError):
    name = "LIMIT_EXCEEDED"


class Unavailable(ApplicationError):
    name = "UNAVAILABLE"


class ShuttingDown(ApplicationError):
    name = "SHUTTING_DOWN"


class Corrupt(ApplicationError):
    """A tier's stored data is damaged (``data["tier"]``): its calls are refused until it
    is repaired; the other tiers go on."""

    name = "CORRUPT"


class Broken(ApplicationError):
    """A barrier generation broke before every party arrived (``data["generation"]``,
    ``data["arrived"]``, ``data["parties"]``); the next arrival starts a new one."""

    name = "BROKEN"


class ConnectionLost(MnemoError):
    """The connection to mnemod dropped (or the client was closed).

    A request in flight when this is raised may or may not have been applied.
    """

    code = 0


_BY_CODE: Dict[int, Type[MnemoError]] = {
    -32700: ParseError,
    -32600: InvalidRequest,
    -32601: MethodNotFound,
    -32602: InvalidParams,
    -32603: InternalError,
}

_BY_NAME: Dict[str, Type[ApplicationError]] = {
    cls.name: cls  # type: ignore[misc]
    for cls in (
        Unauthenticated,
        Forbidden,
        NotFound,
        Conflict,
        Claimed,
        Fenced,
        Broken,
        IdempotencyMismatch,
        InvalidTransition,
        DimensionMismatch,
        LimitExceeded,
        Unavailable,
        ShuttingDown,
        Corrupt,
    )
}


def error_from_response(obj: Mapping[str, Any]) -> MnemoError:
    """Build the typed exception for a JSON-RPC error.

    ``obj`` is either a whole response (``{"jsonrpc", "id", "error"}``) or the error
    object itself (``{"code", "message", "data"}``).
    """
    err: Any = obj.get("error", obj)
    if not isinstance(err, Mapping):
        return MnemoError(str(err))
    code = err.get("code")
    message = str(err.get("message", ""))
    data = err.get("data")
    if not isinstance(data, dict):
        data = {} if data is None else {"value": data}
    if not isinstance(code, int):
        return MnemoError(message, data=data)
    if code == -32000:
        name = data.get("code")
        cls: Type[MnemoError] = _BY_NAME.get(name, ApplicationError) if isinstance(name, str) else ApplicationError
        return cls(message, code=code, data=data)
    return _BY_CODE.get(code, MnemoError)(message, code=code, data=data)
