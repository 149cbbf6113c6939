"""Dealer messages <-> domain objects, in one place for the party and the dealer.

A correction can hold up to 50 million int64 values (400 MB), far above the gRPC
message limit (transport.tls.MAX_MESSAGE_BYTES), so the dealer streams it as 1-D
chunks, each naming the request it answers, and the party checks that the chunks
tile exactly the shape it asked for (`CorrectionAssembly`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

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


def correction_chunks(
    correction: torch.Tensor, sequence: int = 0
) -> Iterator[dealer_pb2.CorrelatedReply]:
    """The reply stream for one correction, the answer to request `sequence` (one chunk
    even when it is empty)."""
    flat = correction.detach().contiguous().reshape(-1).numpy()
    shape = list(correction.shape)
    for start in range(0, max(flat.size, 1), CHUNK_ELEMENTS):
        yield dealer_pb2.CorrelatedReply(
            correction=encode_array(flat[start : start + CHUNK_ELEMENTS]),
            shape=shape,
            offset=start,
            sequence=sequence,
        )


class CorrectionAssembly:
    """One streamed correction of the expected shape, chunk by chunk; TransportError if
    a chunk does not fit exactly (wrong shape, dtype, order, request, gaps or overlaps)."""

    def __init__(self, shape: tuple[int, ...], sequence: int | None = None) -> None:
        self.shape = shape
        self.sequence = sequence
        self._out = np.empty(math.prod(shape), dtype=np.int64)
        self._filled = 0
        self._chunks = 0

    @property
    def complete(self) -> bool:
        """Every value is in (an empty correction still comes as one chunk)."""
        return self._chunks > 0 and self._filled == self._out.size

    def add(self, reply: dealer_pb2.CorrelatedReply) -> None:
        if self.sequence is not None and reply.sequence != self.sequence:
            raise TransportError(
                f"correction for request {reply.sequence}, expected request {self.sequence}"
            )
        if tuple(reply.shape) != self.shape:
            raise TransportError(
                f"correction of shape {list(reply.shape)}, expected {list(self.shape)}"
            )
        chunk = decode_array(reply.correction)
        if chunk.dtype != np.int64 or chunk.ndim != 1:
            raise TransportError(f"correction chunk of dtype {chunk.dtype}, expected 1-D int64")
        filled = self._filled
        if reply.offset != filled or filled + chunk.size > self._out.size or self.complete:
            raise TransportError(f"correction chunk at {reply.offset} does not follow {filled}")
        self._out[filled : filled + chunk.size] = chunk
        self._filled += chunk.size
        self._chunks += 1

    def result(self) -> torch.Tensor:
        if self._filled != self._out.size:
            raise TransportError(f"correction has {self._filled} values, expected {self._out.size}")
        return torch.from_numpy(self._out).reshape(self.shape)
