"""MPyC runs at statistical security k >= 40 (its default is 30), with fields sized for it.

MPyC's comparisons, bit decompositions and truncations open an l-bit value plus a
random mask of l + k bits; the opened sum must not wrap around the field, so MPyC
sizes a type's field as l + f + k + 2 bits when the type is first made, and caches
the type. These tests pin k in the runtime a job builds, check that every type the
backend uses has a field for that k (also a type made before any job, through MPyC's
import-time runtime), and that comparisons at the edge of the value range stay exact.
The comparisons run on a one-party runtime: it masks and opens exactly as a
federation does, without the network.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from smpc_ehr.backends.mpyc import library
from smpc_ehr.backends.mpyc import ops as mops
from smpc_ehr.backends.mpyc import runtime as mruntime

MIN_SEC_PARAM = 40


@pytest.fixture
def restore_mpyc_globals() -> Iterator[None]:
    """Building a runtime points MPyC's module globals at it: put them back after."""
    library.import_mpyc()
    modules = [importlib.import_module(f"mpyc.{name}") for name in library.GLOBAL_MODULES]
    saved = [module.runtime for module in modules]
    yield
    for module, runtime in zip(modules, saved, strict=True):
        module.runtime = runtime


def run_alone(program: Any) -> Any:
    """Run `program(ops)` on a one-party runtime built as a job builds its runtime."""

    async def main() -> Any:
        channel = SimpleNamespace(parties=("solo",), my_index=0)
        rt = mruntime._build_runtime(library.import_mpyc(), channel, round_seconds=10.0)
        rt._prss_keys = mruntime.send_prss_keys(channel)  # no peers: nothing is sent
        try:
            return await program(mops.MpycOps(rt, bits=32))
        finally:
            rt.prfs.cache_clear()

    return asyncio.run(main())


def test_a_job_runtime_runs_at_sec_param_40_with_fields_to_match(restore_mpyc_globals) -> None:
    async def fields(ops: mops.MpycOps) -> tuple[int, list[tuple[int, int]]]:
        rt = ops._rt
        types = [rt.SecInt(32), rt.SecInt(30), rt.SecFxp(mops.FXP_BITS, mops.FXP_FRAC_BITS)]
        return rt.options.sec_param, [
            (t.field.order.bit_length(), t.bit_length + t.frac_length) for t in types
        ]

    sec_param, sizes = run_alone(fields)
    assert sec_param >= MIN_SEC_PARAM
    for field_bits, value_bits in sizes:
        assert field_bits >= value_bits + sec_param + 2


def test_a_type_made_before_any_job_is_sized_for_the_same_k() -> None:
    # MPyC caches secure types: one made through MPyC's import-time runtime (by a test
    # or a tool, before any job) is the one every later job gets.
    runtime = library.import_mpyc().mpc
    assert runtime.options.sec_param >= MIN_SEC_PARAM
    fresh = runtime.SecInt(47)  # a bit length no other test uses: made here, now
    assert fresh.field.order.bit_length() >= 47 + MIN_SEC_PARAM + 2
    library.check_field(fresh, MIN_SEC_PARAM)


def test_a_type_made_under_a_smaller_k_is_refused(monkeypatch) -> None:
    # The hazard of MPyC's type cache: a type made while k was smaller keeps its field.
    runtime = library.import_mpyc().mpc
    monkeypatch.setattr(runtime.options, "sec_param", 20)
    stale = runtime.SecInt(23)  # a bit length no job uses: 23 + 20 + 2 = 45-bit field
    monkeypatch.undo()
    with pytest.raises(RuntimeError, match="45-bit field"):
        library.check_field(stale, MIN_SEC_PARAM)


INT_EDGE = 2**31 - 1
"""The largest magnitude a 32-bit secure integer compares correctly (l = 32)."""


def test_integer_comparisons_at_the_edge_of_the_range_are_exact(restore_mpyc_globals) -> None:
    values = np.array(
        [INT_EDGE, -INT_EDGE, INT_EDGE - 1, -INT_EDGE + 1, 1, 0, -1, 2**30, -(2**30)],
        dtype=object,
    )
    bounds = [0, 1, -1]

    async def compare(ops: mops.MpycOps) -> list[list[float]]:
        shared = ops.input_ints([int(v) for v in values], bits=32)[0]
        out = []
        for bound in bounds:
            out.append(list(await ops.reveal(ops.ge_public(shared, bound))))
        # a difference of two secrets just inside the range: (2^30 - 1) - (-2^30) = 2^31 - 1
        a = ops.input_ints([2**30 - 1, -(2**30)], bits=32)[0]
        out.append(list(np.atleast_1d(await ops.reveal(ops.ge_public(a[0] - a[1], 0)))))
        out.append(list(np.atleast_1d(await ops.reveal(ops.ge_public(a[1] - a[0], 0)))))
        return out

    for _ in range(3):  # fresh masks each run
        opened = run_alone(compare)
        for bound, got in zip(bounds, opened, strict=False):
            assert got == [float(int(v) >= bound) for v in values], f"bound {bound}"
        assert opened[-2:] == [[1.0], [0.0]]


def test_fixed_point_comparisons_near_the_stated_range_are_exact(restore_mpyc_globals) -> None:
    edge = mops.precision(1).max_abs - 1.0
    ulp = 2.0**-mops.FXP_FRAC_BITS
    values = np.array([edge, -edge, ulp, -ulp, 0.0, 0.5, 0.5 - ulp, -(edge - 0.5)])
    bounds = [0.0, 0.5, -0.5]

    async def compare(ops: mops.MpycOps) -> list[list[float]]:
        shared = ops.input_values(0, values, values.shape)
        return [list(await ops.reveal(ops.ge_public(shared, b))) for b in bounds]

    for _ in range(3):
        opened = run_alone(compare)
        for bound, got in zip(bounds, opened, strict=True):
            assert got == [float(v >= bound) for v in values], f"bound {bound}"
