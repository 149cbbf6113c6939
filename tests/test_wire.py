"""The wire contract: generated code matches proto/, arrays travel as raw bytes."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from smpc_ehr.errors import TransportError
from smpc_ehr.transport.arrays import decode_array, encode_array
from tests.federations import ROOT


def test_generated_protobuf_code_matches_the_proto_sources() -> None:
    done = subprocess.run(
        [sys.executable, "scripts/gen_proto.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    "array",
    [
        np.arange(12, dtype=np.int64).reshape(3, 4),
        np.array([1.5, -2.25, np.nan]),
        np.array([], dtype=np.uint8),
        np.arange(6, dtype=">i4"),  # big-endian input is sent little-endian
    ],
)
def test_arrays_round_trip_as_little_endian_bytes(array: np.ndarray) -> None:
    message = encode_array(array)
    assert message.dtype.startswith(("<", "|"))
    assert (
        message.data == np.ascontiguousarray(array.astype(array.dtype.newbyteorder("<"))).tobytes()
    )
    back = decode_array(message)
    np.testing.assert_array_equal(back, array)
    assert back.shape == array.shape


def test_malformed_arrays_are_rejected() -> None:
    message = encode_array(np.arange(4, dtype=np.int32))
    message.data = message.data[:-1]
    with pytest.raises(TransportError, match="needs 16 bytes"):
        decode_array(message)
    message = encode_array(np.arange(4, dtype=np.int32))
    message.dtype = "O"
    with pytest.raises(TransportError):
        decode_array(message)
    with pytest.raises(TypeError):
        encode_array(np.array(["a"], dtype=object))
