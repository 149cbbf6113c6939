"""The safe array codec that replaces pickle inside mpyc.runtime."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from smpc_ehr.backends.mpyc.codec import ArrayCodec

P = 2**127 - 1


@pytest.mark.parametrize(
    "array",
    [
        np.array([0, 1, P - 1, 2**64, 2**64 - 1, 12345678901234567890123], dtype=object),
        np.array([[3, P - 2], [2**100, 0]], dtype=object),
        np.array([], dtype=object),
        np.array([0, 7, 2**40], dtype=object),
        np.arange(-5, 5, dtype=np.int64).reshape(2, 5),
    ],
)
def test_field_arrays_round_trip(array: np.ndarray) -> None:
    back = ArrayCodec.loads(ArrayCodec.dumps(array))
    assert back.shape == array.shape and back.dtype == array.dtype
    assert [int(v) for v in back.reshape(-1)] == [int(v) for v in array.reshape(-1)]


def test_only_integer_arrays_are_sent() -> None:
    for bad in ([1, 2], {"a": 1}, np.array([1.5]), np.array([-1], dtype=object)):
        with pytest.raises(TypeError):
            ArrayCodec.dumps(bad)


def test_malformed_or_pickled_payloads_are_refused() -> None:
    good = ArrayCodec.dumps(np.array([1, 2, 3], dtype=object))
    for bad in (good[:-1], b"", pickle.dumps(np.array([1, 2, 3], dtype=object)), good + b"x"):
        with pytest.raises(ValueError):
            ArrayCodec.loads(bad)


def test_mpyc_runtime_marshals_through_the_codec_not_pickle() -> None:
    from smpc_ehr.backends.mpyc.library import import_mpyc

    runtime = import_mpyc()
    assert runtime.pickle is ArrayCodec
    with pytest.raises(TypeError):  # MPyC's transfer of arbitrary objects cannot pickle
        runtime.pickle.dumps({"any": "object"})
