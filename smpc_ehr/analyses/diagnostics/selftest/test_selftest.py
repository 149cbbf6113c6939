"""Conformance: the same cases on both backends, over real mutual-TLS federations.

Every secure operation (the `backend_selftest` template) and the joint count with
small-cell suppression (`rare_disease_count`, with and without `by`) run with 2 parties
(CrypTen only: MPyC needs an honest majority of 3), 3 and 5 parties, and must agree
with plain numpy on the same seeds (pandas on the pooled files for counts). The
tolerance of each result is derived from the backend's stated `Precision` (its
fractional bits and its documented approximation errors), never chosen per case:
exact operations must match exactly, a product within one product's error, and
reciprocal, division and sqrt within their documented bounds.

CrypTen runs with the federation's dealer. Should `local up` ever start no dealer,
the 2-party federation here is started with the test-only trusted-first-party
provider (SMPC_EHR_INSECURE_TFP_FOR_TESTS=1), and CrypTen cases on the shared
federations are skipped unless that variable was set when they started.

The battery also runs on the in-process federation (tests/_inprocess.py, the fast
tier) over the plaintext reference ops, at the reference's stated precision.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from smpc_ehr.analyses.diagnostics.selftest.analysis import (
    ADD_CONSTANT,
    GE_BOUND,
    PartyInputs,
    layout,
    party_inputs,
    pow2_exponents,
    public_factors,
    weights,
)
from smpc_ehr.analyses.statistics.count.test_count import THRESHOLD, check_against_truth
from smpc_ehr.backends.crypten.entry import INSECURE_TFP_ENV
from smpc_ehr.client import Client
from smpc_ehr.local.federation import DEALER_ID, LocalFederation, down
from smpc_ehr.securemath.ops import ApproxError, Precision
from smpc_ehr.testing.federation import Hospital, InProcessFederation
from smpc_ehr.testing.reference import REFERENCE_PRECISION
from tests._truth import truth_counts
from tests.federations import COUNT_TEMPLATE, PROTOCOLS, make_data, start_federation

SELFTEST_TEMPLATE = PROTOCOLS / "backend_selftest.toml"

RUNS = [("crypten", 2), ("crypten", 3), ("crypten", 5), ("mpyc", 3), ("mpyc", 5)]
"""(backend, number of parties): MPyC refuses 2 parties (no honest majority)."""

COUNT_CASES = [{"codes": "E11"}, {"codes": "E11", "by": "sex"}]


@pytest.fixture(scope="module")
def data2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_data(tmp_path_factory.mktemp("data2"), 2, 3000, seed=2)


@pytest.fixture(scope="module")
def fed2(data2: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFederation]:
    """Two hospitals: the smallest federation CrypTen serves (with its dealer, or TFP)."""
    state = tmp_path_factory.mktemp("fed2")
    with pytest.MonkeyPatch.context() as env:
        env.setenv(INSECURE_TFP_ENV, "1")  # inherited by the processes; unused with a dealer
        federation = start_federation(data2, state)
    yield federation
    down(state)


def federation(request: pytest.FixtureRequest, backend: str, n: int) -> LocalFederation:
    """The n-party federation, or a skip if it cannot run CrypTen (no dealer, no TFP)."""
    fed: LocalFederation = request.getfixturevalue(f"fed{n}")
    tfp = n == 2 or os.environ.get(INSECURE_TFP_ENV) == "1"  # fed2 always starts with it
    if backend == "crypten" and DEALER_ID not in fed.addresses and not tfp:
        pytest.skip("no dealer in this federation and TFP was not enabled for it")
    return fed


def precision(backend: str, n: int) -> Precision:
    """The backend's stated precision with n parties."""
    if backend == "mpyc":
        from smpc_ehr.backends.mpyc.ops import precision as mpyc_precision

        return mpyc_precision(n)
    from smpc_ehr.backends.crypten.backend import precision as crypten_precision

    return crypten_precision(n)


# The precision docs/backends.md states, written out here so that a backend widening
# its own claim cannot loosen the tests that take their tolerances from it.
ULP32, ULP16 = 2.0**-32, 2.0**-16
DOCUMENTED = {
    "mpyc": lambda n: Precision(
        frac_bits=32,
        max_abs=2.0**31,
        product_error=(math.comb(n, (n - 1) // 2) + 1) / 2 * ULP32,
        reciprocal=ApproxError(
            2.0**-14,
            2.0**30,
            2 * (math.comb(n, (n - 1) // 2) + 1) * ULP32,
            8 * (math.comb(n, (n - 1) // 2) + 1) * ULP32,
        ),
        sqrt=ApproxError(
            0.0,
            2.0**30,
            2 * (math.comb(n, (n - 1) // 2) + 1) * ULP32,
            8 * (math.comb(n, (n - 1) // 2) + 1) * ULP32,
        ),
    ),
    "crypten": lambda n: Precision(
        frac_bits=16,
        max_abs=2.0**31,
        product_error=n * ULP16,
        reciprocal=ApproxError(0.5, 8.0, 10 * n * ULP16, 0.0),
        sqrt=ApproxError(0.25, 64.0, 4 * n * ULP16, 4e-3),
    ),
}


@pytest.mark.parametrize(("backend", "n"), RUNS)
def test_stated_precision_is_the_documented_one(backend: str, n: int) -> None:
    assert precision(backend, n) == DOCUMENTED[backend](n)


def plaintext_battery(seed: int, n: int, size: int) -> dict[str, np.ndarray]:
    """The self-test's results in numpy, from the same public inputs."""
    inputs = [party_inputs(seed, i, size) for i in range(n)]
    x = sum(i.x for i in inputs)
    y = sum(i.y for i in inputs)
    u = sum(i.u for i in inputs)
    v = sum(i.v for i in inputs)
    p_first, p_last = inputs[0].p, inputs[-1].p
    assert isinstance(x, np.ndarray) and isinstance(u, np.ndarray)
    return {
        "add": x,
        "sub": x - y,
        "mul": x * y,
        "mul_public": x * public_factors(size),
        "matmul": u @ v,
        "sum": np.array([x.sum()]),
        "sum_axis": u.sum(axis=1),
        "lt": (x < y).astype(float),
        "ge_public": (x >= GE_BOUND).astype(float),
        "select": np.where(x < y, x, y),
        "reciprocal": 1 / p_first,
        "div": x / p_last,
        "sqrt": np.sqrt(p_first + p_last),
        "add_public": x + ADD_CONSTANT,
        "stack": np.stack([x, y]),
        "reshape": u.reshape(size, 3),
        "mul_pow2": x * 2.0 ** -pow2_exponents(size),
        "fractions_of_total": fractions(inputs),
        "concatenate": np.concatenate([x, y]),
        "transpose": u.T,
        "weighted_sum": weights(size)[0] * x + weights(size)[1] * y,
        "bits_scaled": (x >= GE_BOUND) * public_factors(size),
        "mixed_stack": np.stack([(x < y).astype(float), x]),
    }


def fractions(inputs: list[PartyInputs]) -> np.ndarray:
    """Party 0's share of each column total (0 where the total is 0)."""
    total = sum(i.c for i in inputs)
    assert isinstance(total, np.ndarray) and total[0] == 0 and total[1:].min() > 0
    return np.divide(inputs[0].c, total, out=np.zeros(len(total)), where=total > 0)


def tolerances(seed: int, n: int, size: int, prec: Precision) -> dict[str, np.ndarray]:
    """Each result's allowed error under `prec`; inputs are on a grid both backends hold
    exactly, so sums, differences, comparisons and selections must be exact."""
    inputs = [party_inputs(seed, i, size) for i in range(n)]
    p_first, p_last = inputs[0].p, inputs[-1].p
    x = np.abs(sum(i.x for i in inputs))
    for values, domain in ((p_first, prec.reciprocal), (p_last, prec.reciprocal)):
        assert domain.low <= values.min() and values.max() <= domain.high
    assert prec.sqrt.low <= (p_first + p_last).min() <= (p_first + p_last).max() <= prec.sqrt.high
    exact = np.zeros(size)
    product = np.full(size, prec.product_error)
    return {
        "add": exact,
        "sub": exact,
        "mul": product,
        "mul_public": product,
        "matmul": np.full((3, 3), prec.product_error),
        "sum": np.zeros(1),
        "sum_axis": np.zeros(3),
        "lt": exact,
        "ge_public": exact,
        "select": exact,
        "reciprocal": prec.reciprocal.bound(1 / p_first),
        # a * (1/b): |a| times the reciprocal's error, plus the product's rounding
        "div": x * prec.reciprocal.bound(1 / p_last) + prec.product_error,
        "sqrt": prec.sqrt.bound(np.sqrt(p_first + p_last)),
        "add_public": exact,
        "stack": np.zeros((2, size)),
        "reshape": np.zeros((size, 3)),
        "mul_pow2": product,
        "fractions_of_total": np.full(size, 8 * prec.product_error),
        "concatenate": np.zeros(2 * size),
        "transpose": np.zeros((size, 3)),
        "weighted_sum": 2 * product,  # at most one rounding per term (CrypTen: one in all)
        "bits_scaled": product,
        "mixed_stack": np.zeros((2, size)),
    }


@pytest.mark.parametrize(("backend", "n"), RUNS, ids=[f"{b}-{n}" for b, n in RUNS])
def test_every_operation_agrees_with_numpy(
    request: pytest.FixtureRequest, backend: str, n: int
) -> None:
    fed = federation(request, backend, n)
    # MPyC normalises up to 4 columns by comparisons and more by a bit decomposition
    # (mpyc.ops.COMPARE_COLUMNS): size 4 with 5 parties takes the first way.
    seed, size = 1000 + n, 4 if n == 5 else 12
    with Client.from_state(fed.state_dir) as client:
        result = client.run(SELFTEST_TEMPLATE, {"seed": seed, "size": size}, backend=backend)
    assert result.backend == backend and len(result.parties) == n
    got = {name: np.asarray(values) for name, values in result.result.items()}
    assert list(got) == [name for name, _ in layout(size)]
    expected = plaintext_battery(seed, n, size)
    allowed = tolerances(seed, n, size, precision(backend, n))
    worst = {}
    for name, want in expected.items():
        assert got[name].shape == want.shape, name
        error = np.abs(got[name] - want)
        worst[name] = float(error.max())
        assert np.all(error <= allowed[name]), (name, error.max(), allowed[name].max())
    print(f"{backend} n={n} largest errors:", {k: f"{v:.2e}" for k, v in worst.items()})


@pytest.mark.parametrize(("backend", "n"), RUNS, ids=[f"{b}-{n}" for b, n in RUNS])
@pytest.mark.parametrize("params", COUNT_CASES, ids=[str(c) for c in COUNT_CASES])
def test_counts_agree_with_pooled_plaintext(
    request: pytest.FixtureRequest, backend: str, n: int, params: dict[str, str]
) -> None:
    fed = federation(request, backend, n)
    data: Path = request.getfixturevalue(f"data{n}")
    with Client.from_state(fed.state_dir) as client:
        result = client.run(COUNT_TEMPLATE, params, backend=backend)
    assert result.backend == backend and len(result.parties) == n
    assert result.result["threshold"] == THRESHOLD
    by = tuple(params["by"].split(",")) if "by" in params else ()
    check_against_truth(result.result, truth_counts(data, [params["codes"]], by=by))


def test_mpyc_refuses_to_open_integers_and_fixed_point_together() -> None:
    import asyncio

    from smpc_ehr.backends.mpyc.library import import_mpyc
    from smpc_ehr.backends.mpyc.ops import FXP_BITS, FXP_FRAC_BITS, MpycOps
    from smpc_ehr.securemath.ops import MixedOutputsError

    runtime = import_mpyc().mpc  # MPyC's own one-party runtime: no federation needed
    ops = MpycOps(runtime)
    integers = runtime.SecInt(32).array(np.array([1, 2], dtype=object))
    fixed = runtime.SecFxp(FXP_BITS, FXP_FRAC_BITS).array(np.array([0.5]))
    with pytest.raises(MixedOutputsError, match="all secret integers or all fixed-point"):
        asyncio.run(ops.output_shares([integers, fixed]))


def test_crypten_opens_integers_at_scale_1_and_refuses_ambiguous_outputs() -> None:
    from smpc_ehr.backends.crypten.backend import FRAC_BITS, output_frac_bits
    from smpc_ehr.securemath.ops import MixedOutputsError

    assert output_frac_bits({"int"}, [1, 1]) == 0
    assert output_frac_bits({"fixed"}, [2**16, 1]) == FRAC_BITS  # 1: a comparison result
    assert output_frac_bits({"int", "fixed"}, [2**16]) == FRAC_BITS
    with pytest.raises(MixedOutputsError, match="ambiguous"):
        output_frac_bits({"int", "fixed"}, [2**16, 1])
    with pytest.raises(MixedOutputsError, match="integer job"):
        output_frac_bits({"int"}, [2**16])


# ------------------------------------------------------------------ in process (fast tier)


@pytest.mark.parametrize("n", [2, 3, 5])
def test_every_operation_is_within_the_stated_precision_in_process(
    inprocess: InProcessFederation, n: int
) -> None:
    """The battery at the reference's precision: its promise is a backend's."""
    parties = InProcessFederation(
        [Hospital(f"h{i}", inprocess.hospitals[0].data, THRESHOLD) for i in range(n)]
    )
    seed, size = 1000 + n, 12
    result = parties.run(SELFTEST_TEMPLATE, {"seed": seed, "size": size}).result
    got = {name: np.asarray(values) for name, values in result.items()}
    assert list(got) == [name for name, _ in layout(size)]
    allowed = tolerances(seed, n, size, REFERENCE_PRECISION)
    for name, want in plaintext_battery(seed, n, size).items():
        assert got[name].shape == want.shape, name
        assert np.all(np.abs(got[name] - want) <= allowed[name]), name
