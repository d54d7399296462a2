"""Python client for mnemod, the Mnemo memory daemon (JSON-RPC 2.0 over a Unix socket)."""
from ._api import default_socket_path, timestamp
from .client import Claim, Client, Watch
from .errors import (
    ApplicationError,
    Claimed,
    Conflict,
    Corrupt,
    Broken,
    ConnectionLost,
    DimensionMismatch,
    Fenced,
    Forbidden,
    IdempotencyMismatch,
    InternalError,
    InvalidParams,
    InvalidRequest,
    InvalidTransition,
    LimitExceeded,
    MethodNotFound,
    MnemoError,
    NotFound,
    ParseError,
    ShuttingDown,
    Unauthenticated,
    Unavailable,
    error_from_response,
)

__version__ = "0.1.0"

__all__ = [
    "Client", "Claim", "Watch", "default_socket_path", "timestamp", "__version__",
    "MnemoError", "ParseError", "InvalidRequest", "MethodNotFound", "InvalidParams", "InternalError",
    "ApplicationError", "Unauthenticated", "Forbidden", "NotFound", "Conflict", "Claimed", "Fenced",
    "IdempotencyMismatch", "InvalidTransition", "DimensionMismatch", "LimitExceeded", "Unavailable",
    "ShuttingDown", "Corrupt", "Broken", "ConnectionLost", "error_from_response",
]
