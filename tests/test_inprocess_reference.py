"""The plaintext reference ops keep the contract a backend states (fast tier): rounding
and approximation within `REFERENCE_PRECISION`, the parties' own inputs, and the
failures a real job has (drifting programs, mixed outputs, a joint refusal); and the
reference is never a backend a job can name."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from smpc_ehr.analyses import ANALYSES
from smpc_ehr.analyses.base import Analysis, NamedProgram, NamedSecrets, Output, Params
from smpc_ehr.analyses.common.local_checks import JOINT_MESSAGE, UnusableValues
from smpc_ehr.backends import BACKENDS
from smpc_ehr.data.records import PartyData
from smpc_ehr.errors import Refusal
from smpc_ehr.securemath.ops import MixedOutputsError, Secret, SecureOps, SecureProgram
from smpc_ehr.study.template import parse_template
from smpc_ehr.testing.backend import output_shares
from smpc_ehr.testing.federation import Hospital, InProcessFederation, JobFailed, execute
from smpc_ehr.testing.reference import REFERENCE_PRECISION, ReferenceFailure
from tests.federations import COUNT_TEMPLATE

ULP = 2.0**-REFERENCE_PRECISION.frac_bits


def run(program: SecureProgram, parties: int = 3) -> list[np.ndarray]:
    """Every party runs `program`; the parties' outputs (which must agree), opened."""
    outputs = execute([program] * parties)
    return [np.asarray(s.value, dtype=float) for s in outputs[0]]


def test_inputs_are_each_partys_own() -> None:
    async def program(ops: SecureOps) -> list[Secret]:
        ints = ops.input_ints([ops.my_index + 1, 10 * ops.my_index], 8)
        mine = np.full(2, 0.5 + ops.my_index)
        last = ops.input_values(2, mine if ops.my_index == 2 else None, (2,))
        return [ops.sum_vectors(ints), ops.stack(ints)[1], ops.mul_public(last, 2.0)]

    total, second, doubled = run(program)
    assert total.tolist() == [6, 30] and second.tolist() == [2, 10]
    assert doubled.tolist() == [5.0, 5.0]


def test_products_are_rounded_once_within_the_stated_error() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.uniform(-100, 100, 500), rng.uniform(-100, 100, 500)

    async def program(ops: SecureOps) -> list[Secret]:
        x = ops.input_values(0, a if ops.my_index == 0 else None, a.shape)
        y = ops.input_values(1, b if ops.my_index == 1 else None, b.shape)
        return [ops.mul(x, y), ops.mul_public(x, 3.0), ops.select(ops.lt(x, y), x, y)]

    product, tripled, smaller = run(program)
    grid_a, grid_b = np.round(a / ULP) * ULP, np.round(b / ULP) * ULP
    assert np.abs(product - grid_a * grid_b).max() <= REFERENCE_PRECISION.product_error
    assert np.array_equal(tripled, 3 * grid_a)  # a whole factor: exact
    assert np.array_equal(smaller, np.minimum(grid_a, grid_b))  # comparisons, selection: exact


def test_reciprocal_and_sqrt_are_within_their_stated_errors() -> None:
    values = np.geomspace(2.0**-10, 2.0**28, 200)

    async def program(ops: SecureOps) -> list[Secret]:
        x = ops.input_values(0, values if ops.my_index == 0 else None, values.shape)
        return [ops.reciprocal(x), ops.sqrt(x)]

    reciprocal, root = run(program, parties=2)
    grid = np.round(values / ULP) * ULP
    assert np.all(np.abs(reciprocal - 1 / grid) <= REFERENCE_PRECISION.reciprocal.bound(1 / grid))
    assert np.all(np.abs(root - np.sqrt(grid)) <= REFERENCE_PRECISION.sqrt.bound(np.sqrt(grid)))


def test_values_beyond_the_stated_range_fail() -> None:
    async def program(ops: SecureOps) -> list[Secret]:
        x = ops.input_values(0, np.array([2.0**20]) if ops.my_index == 0 else None, (1,))
        return [ops.mul(x, x)]

    with pytest.raises(OverflowError, match="beyond the stated range"):
        run(program)


def test_a_program_cannot_branch_on_a_secret() -> None:
    async def program(ops: SecureOps) -> list[Secret]:
        bit = ops.ge_public(ops.input_ints([ops.my_index], 4)[0], 1)
        return [bit] if bit else []

    with pytest.raises(TypeError, match="cannot branch"):
        run(program)


def test_programs_that_drift_apart_fail_at_the_call_that_differs() -> None:
    async def program(ops: SecureOps) -> list[Secret]:
        return ops.input_ints([1] * (2 if ops.my_index == 1 else 3), 4)

    with pytest.raises(ReferenceFailure, match="drifted apart at exchange 0"):
        run(program)


def test_integers_and_fixed_point_are_not_opened_together() -> None:
    async def program(ops: SecureOps) -> list[Secret]:
        x = ops.input_values(0, np.ones(1) if ops.my_index == 0 else None, (1,))
        return [ops.input_ints([1], 4)[0], x]

    with pytest.raises(MixedOutputsError):
        output_shares(execute([program] * 3)[0], my_index=0, n_parties=3)


class _Unusable(Analysis):
    """A party (the second) finds its values unusable in its local step."""

    name = "unusable"

    def validate(self, params: Params) -> None:
        del params

    def local_input(self, data: PartyData, params: Params) -> Any:
        if data is _SECOND:
            raise UnusableValues("hospital-2's column x has values beyond +-16384")
        return 1

    def outputs(self, params: Params) -> tuple[Output, ...]:
        return (Output("total", (1,)),)

    def secure_program(self, local: Any, params: Params, threshold: int) -> NamedProgram:
        async def program(ops: SecureOps) -> NamedSecrets:
            return {"total": ops.sum_vectors(ops.input_ints([local], 4))}

        return program

    def finalize(self, opened: dict[str, np.ndarray], params: Params, threshold: int) -> dict:
        return {"total": int(opened["total"][0])}


_SECOND: Any = object()


_UNUSABLE_TEMPLATE = parse_template(
    """
[protocol]
name = "unusable"
title = "A test analysis whose second party finds its values unusable"
analysis = "unusable"
version = 1
leakage = "The total of the parties' ones."
"""
)


def test_unusable_values_are_refused_jointly_without_a_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(ANALYSES, "unusable", _Unusable())
    datas: list[Any] = [object(), object(), object()]

    def federation() -> InProcessFederation:
        return InProcessFederation([Hospital(f"hospital-{i + 1}", d) for i, d in enumerate(datas)])

    assert federation().run(_UNUSABLE_TEMPLATE).result == {"total": 3}
    datas[1] = _SECOND
    with pytest.raises(JobFailed) as refused:
        federation().run(_UNUSABLE_TEMPLATE)
    assert str(refused.value) == JOINT_MESSAGE


def test_the_reference_is_never_a_backend_a_job_can_name() -> None:
    assert "reference" not in BACKENDS
    no_data: Any = object()
    federation = InProcessFederation([Hospital(f"hospital-{i}", no_data) for i in (1, 2, 3)])
    with pytest.raises(Refusal, match="backend 'reference' is not available"):
        federation.run(COUNT_TEMPLATE, {"codes": "E11"}, backend="reference")
