"""One mapping from domain errors to gRPC status codes, used by every servicer."""

from __future__ import annotations

import grpc

from smpc_ehr.errors import (
    BadRequest,
    ConfigError,
    DataError,
    JobAborted,
    JointRefusal,
    Refusal,
    TemplateError,
    TransportError,
)

_CODES: tuple[tuple[type[BaseException], grpc.StatusCode], ...] = (
    (PermissionError, grpc.StatusCode.PERMISSION_DENIED),
    # A refusal decided jointly inside MPC: the coordinator reports it naming no party.
    (JointRefusal, grpc.StatusCode.OUT_OF_RANGE),
    (TemplateError, grpc.StatusCode.INVALID_ARGUMENT),
    (BadRequest, grpc.StatusCode.INVALID_ARGUMENT),
    (Refusal, grpc.StatusCode.FAILED_PRECONDITION),
    (DataError, grpc.StatusCode.FAILED_PRECONDITION),
    (ConfigError, grpc.StatusCode.FAILED_PRECONDITION),
    (JobAborted, grpc.StatusCode.ABORTED),
    (TransportError, grpc.StatusCode.ABORTED),
    (TimeoutError, grpc.StatusCode.DEADLINE_EXCEEDED),
    (KeyError, grpc.StatusCode.NOT_FOUND),
)


def status_for(exc: BaseException) -> grpc.StatusCode:
    """The status code an RPC ends with when `exc` stops it."""
    for kind, code in _CODES:
        if isinstance(exc, kind):
            return code
    return grpc.StatusCode.INTERNAL


def message_for(exc: BaseException) -> str:
    """The text the caller sees: our own messages as they are, others with their type."""
    text = str(exc).strip("'\"") if isinstance(exc, KeyError) else str(exc)
    return text or type(exc).__name__
