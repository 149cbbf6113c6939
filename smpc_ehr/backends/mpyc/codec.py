"""A safe stand-in for `pickle` inside `mpyc.runtime`, so MPyC's fast array paths stay on.

MPyC marshals secure arrays with `pickle.dumps`/`pickle.loads` (its vectorised input,
output and resharing paths); its `mix32_64bit` option avoids pickle but sends every
element through slow per-element code. We keep the vectorised paths and replace the
`pickle` that `mpyc.runtime` sees with `ArrayCodec`, which encodes exactly what those
paths send (numpy arrays of non-negative field elements) as raw little-endian limbs
with a shape header, and refuses everything else, so nothing received is unpickled.
MPyC's `transfer` (which pickles arbitrary objects) is never used; through this codec
it would fail loudly.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

_MAGIC = b"SEA1"  # smpc-ehr array, version 1
_HEADER = struct.Struct("<4sBBH")  # magic, kind, ndim, limbs
_OBJECT_INTS, _INT64 = 1, 2
_MASK = (1 << 64) - 1


class ArrayCodec:
    """`dumps`/`loads` for numpy integer arrays only (MPyC field elements)."""

    @staticmethod
    def dumps(array: Any) -> bytes:
        if not isinstance(array, np.ndarray):
            raise TypeError(f"refusing to send a {type(array).__name__}: only arrays are sent")
        shape = struct.pack(f"<{array.ndim}q", *array.shape)
        if array.dtype == np.int64:
            data = array.astype("<i8", copy=False).tobytes()
            return _HEADER.pack(_MAGIC, _INT64, array.ndim, 1) + shape + data
        if array.dtype != object:
            raise TypeError(f"refusing to send an array of dtype {array.dtype}")
        flat = array.reshape(-1)
        if flat.size and flat.min() < 0:
            raise TypeError("field elements must be non-negative")
        top = int(flat.max()).bit_length() if flat.size else 0
        limbs = max(1, -(-top // 64))
        parts = [((flat >> (64 * k)) & _MASK).astype(np.uint64) for k in range(limbs)]
        data = np.stack(parts).astype("<u8", copy=False).tobytes() if flat.size else b""
        return _HEADER.pack(_MAGIC, _OBJECT_INTS, array.ndim, limbs) + shape + data

    @staticmethod
    def loads(payload: bytes) -> np.ndarray:
        try:
            magic, kind, ndim, limbs = _HEADER.unpack_from(payload)
            shape = struct.unpack_from(f"<{ndim}q", payload, _HEADER.size)
        except struct.error as exc:
            raise ValueError(f"malformed MPyC array message: {exc}") from None
        if magic != _MAGIC or kind not in (_OBJECT_INTS, _INT64) or min(shape, default=0) < 0:
            raise ValueError("malformed MPyC array message")
        count = int(np.prod(shape, dtype=np.int64))
        body = memoryview(payload)[_HEADER.size + 8 * ndim :]
        if len(body) != 8 * count * (limbs if kind == _OBJECT_INTS else 1):
            raise ValueError("MPyC array message has the wrong length")
        if kind == _INT64:
            return np.frombuffer(body, dtype="<i8").astype(np.int64).reshape(shape)
        words = np.frombuffer(body, dtype="<u8").reshape(limbs, count).astype(object)
        flat = words[0]
        for k in range(1, limbs):
            flat = flat + (words[k] << (64 * k))
        return np.asarray(flat, dtype=object).reshape(shape)
