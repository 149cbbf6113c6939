"""Dealer messages <-> domain objects, in one place for the party and the dealer.

A correction can hold up to 50 million int64 values (400 MB), far above the gRPC
message limit (transport.tls.MAX_MESSAGE_BYTES), so the dealer streams it as 1-D
chunks and the party checks that the chunks tile exactly the shape it asked for.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

import numpy as np
import torch

from smpc_ehr.dealer_protocol.correlations import Request, kwargs_from_json, make_request
from smpc_ehr.errors import TransportError
from smpc_ehr.transport.arrays import decode_array, encode_array
from smpc_ehr.wire import dealer_pb2

CHUNK_ELEMENTS = 1 << 19
"""int64 values per reply message: 4 MiB, half the gRPC message limit."""


def request_to_wire(job_id: str, sequence: int, request: Request) -> dealer_pb2.CorrelatedRequest:
    """The message rank 0 sends for `request`, the job's `sequence`-th."""
    return dealer_pb2.CorrelatedRequest(
        job_id=job_id,
        sequence=sequence,
        kind=request.kind,
        size0=list(request.size0),
        size1=list(request.size1),
        op=request.op,
        kwargs_json=request.kwargs_json() if request.op_kwargs else "",
    )


def request_from_wire(message: dealer_pb2.CorrelatedRequest) -> Request:
    """The validated request a message asks for; ValueError says what is wrong with it."""
    return make_request(
        message.kind,
        tuple(message.size0),
        tuple(message.size1),
        message.op,
        kwargs_from_json(message.kwargs_json),
    )


def correction_chunks(correction: torch.Tensor) -> Iterator[dealer_pb2.CorrelatedReply]:
    """The reply stream for one correction (one chunk even when it is empty)."""
    flat = correction.detach().contiguous().reshape(-1).numpy()
    shape = list(correction.shape)
    for start in range(0, max(flat.size, 1), CHUNK_ELEMENTS):
        yield dealer_pb2.CorrelatedReply(
            correction=encode_array(flat[start : start + CHUNK_ELEMENTS]),
            shape=shape,
            offset=start,
        )


def correction_from_chunks(
    replies: Iterable[dealer_pb2.CorrelatedReply], shape: tuple[int, ...]
) -> torch.Tensor:
    """Reassemble a streamed correction of the expected `shape`; TransportError if it does
    not fit exactly (wrong shape, dtype, order, gaps or overlaps)."""
    out = np.empty(math.prod(shape), dtype=np.int64)
    filled = 0
    for reply in replies:
        if tuple(reply.shape) != shape:
            raise TransportError(f"correction of shape {list(reply.shape)}, expected {list(shape)}")
        chunk = decode_array(reply.correction)
        if chunk.dtype != np.int64 or chunk.ndim != 1:
            raise TransportError(f"correction chunk of dtype {chunk.dtype}, expected 1-D int64")
        if reply.offset != filled or filled + chunk.size > out.size:
            raise TransportError(f"correction chunk at {reply.offset} does not follow {filled}")
        out[filled : filled + chunk.size] = chunk
        filled += chunk.size
    if filled != out.size:
        raise TransportError(f"correction has {filled} values, expected {out.size}")
    return torch.from_numpy(out).reshape(shape)
