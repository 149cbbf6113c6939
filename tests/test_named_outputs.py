"""Named outputs: what a secure program returns is checked against `Analysis.outputs`,
flattened in the declared order, and cut back into the same named arrays at the
coordinator; a mismatch is an error naming the output, never a silent shift."""

from __future__ import annotations

import numpy as np
import pytest

from smpc_ehr.analyses.base import Output, OutputMismatch, decode_outputs, flatten_outputs

SPEC = (Output("bits", (3,)), Output("matrix", (2, 2)), Output("n", (1,)), Output("total"))


class _Scalar:
    """A secret without a shape, like an MPyC secure scalar."""


def test_flatten_then_decode_is_the_identity_in_declared_order() -> None:
    secrets = {
        "n": np.array([7.0]),
        "matrix": np.arange(4.0).reshape(2, 2),
        "total": _Scalar(),
        "bits": np.array([1.0, 0.0, 1.0]),
    }
    ordered = flatten_outputs(SPEC, secrets)
    assert [id(s) for s in ordered] == [id(secrets[o.name]) for o in SPEC]
    opened = [1, 0, 1, 0.0, 1.0, 2.0, 3.0, 7, 42]  # what the coordinator opens, flat
    named = decode_outputs(SPEC, opened)
    assert list(named) == ["bits", "matrix", "n", "total"]
    np.testing.assert_array_equal(named["matrix"], [[0.0, 1.0], [2.0, 3.0]])
    assert named["total"].shape == () and named["total"] == 42
    np.testing.assert_array_equal(named["bits"], [1, 0, 1])


def test_a_missing_extra_or_misshapen_output_is_refused_by_name() -> None:
    good = {"bits": np.zeros(3), "matrix": np.zeros((2, 2)), "n": np.zeros(1), "total": 1}
    with pytest.raises(OutputMismatch, match="declared"):
        flatten_outputs(SPEC, {k: v for k, v in good.items() if k != "n"})
    with pytest.raises(OutputMismatch, match="declared"):
        flatten_outputs(SPEC, {**good, "extra": np.zeros(1)})
    with pytest.raises(OutputMismatch, match="'matrix' has shape \\(4,\\)"):
        flatten_outputs(SPEC, {**good, "matrix": np.zeros(4)})


def test_opened_values_of_the_wrong_length_are_refused() -> None:
    with pytest.raises(OutputMismatch, match="8 opened values, but the outputs declare 9"):
        decode_outputs(SPEC, [0.0] * 8)
