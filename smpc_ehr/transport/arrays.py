"""Numeric arrays on the wire: raw little-endian bytes with dtype and shape, never pickle.

Only plain numeric dtypes are accepted; decoding checks that the byte count matches
dtype and shape, so a malformed message is an error, not a misread array.
"""

from __future__ import annotations

import numpy as np

from smpc_ehr.errors import TransportError
from smpc_ehr.wire import common_pb2

_ALLOWED_KINDS = frozenset("biuf")  # bool, signed, unsigned, float


def encode_array(array: np.ndarray) -> common_pb2.NDArray:
    """The array as an NDArray message (converted to little-endian if needed)."""
    if array.dtype.kind not in _ALLOWED_KINDS:
        raise TypeError(f"cannot send arrays of dtype {array.dtype} (numbers only)")
    little = array.astype(array.dtype.newbyteorder("<"), copy=False)
    return common_pb2.NDArray(
        dtype=little.dtype.str,
        shape=list(little.shape),
        data=np.ascontiguousarray(little).tobytes(),
    )


def decode_array(message: common_pb2.NDArray) -> np.ndarray:
    """The array an NDArray message holds; TransportError if it is malformed."""
    try:
        dtype = np.dtype(message.dtype)
    except TypeError as exc:
        raise TransportError(f"unknown array dtype {message.dtype!r}") from exc
    if dtype.kind not in _ALLOWED_KINDS or dtype.byteorder == ">":
        raise TransportError(f"array dtype {message.dtype!r} is not a little-endian number type")
    shape = tuple(int(n) for n in message.shape)
    if any(n < 0 for n in shape):
        raise TransportError(f"negative array dimension in shape {shape}")
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(message.data) != expected:
        raise TransportError(
            f"array of shape {shape} and dtype {dtype} needs {expected} bytes, "
            f"got {len(message.data)}"
        )
    return np.frombuffer(message.data, dtype=dtype).reshape(shape).copy()
