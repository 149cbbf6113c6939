"""Quantiles: local input, finaliser and validation on small in-memory data, without
a federation. The secure program is run once on plain numpy arrays (every party's
inputs added up, as MPC would) to check its wiring. Expected quantiles come from
numpy.quantile(method="inverted_cdf"), rounded up to the grid."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import cast

import numpy as np
import pytest

from smpc_ehr.analyses import ANALYSES
from smpc_ehr.analyses.statistics.quantiles.analysis import (
    METHOD,
    QuantilesAnalysis,
    quantiles_program,
)
from smpc_ehr.data.records import PartyData
from smpc_ehr.errors import TemplateError
from smpc_ehr.securemath.ops import SecureOps
from smpc_ehr.study.params import BoundParameters
from smpc_ehr.study.template import load_template
from tests.federations import PROTOCOLS

T = 3
N = 400
QA = QuantilesAnalysis()


def bind(**raw: str) -> BoundParameters:
    return load_template(PROTOCOLS / "quantiles.toml").bind(raw)


def make_data(seed: int, n: int = N) -> PartyData:
    """n patients with bmi on a 0.1 grid (some missing, some on and beyond the grid's
    ends 10 and 70) and a few diagnoses."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(np.array(["F", "M", "U"]), size=n, p=[0.48, 0.48, 0.04])
    birth = np.datetime64("2025-06-01") - rng.integers(365, 89 * 365, size=n).astype(
        "timedelta64[D]"
    )
    bmi = np.round(rng.normal(27, 8, size=n), 1)
    bmi[:6] = [10, 9.9, 70, 70.1, 25, 25.05]
    missing = rng.random(n) < 0.1
    missing[:6] = False
    bmi[missing] = np.nan
    codes = np.array(["E11.9", "I10", "J45"])
    rows = n * 3 // 4
    return PartyData(
        patient_ids=np.array([f"p{seed}-{i}" for i in range(n)], dtype=object),
        sex=sex,
        birth_date=birth.astype("datetime64[D]"),
        features={"bmi": bmi},
        outcomes={},
        cond_patient=rng.integers(0, n, size=rows),
        code_table=codes,
        cond_code_index=rng.integers(0, len(codes), size=rows),
        cond_onset=np.full(rows, np.datetime64("2020-01-01"), dtype="datetime64[D]"),
    )


@pytest.fixture(scope="module")
def data() -> PartyData:
    return make_data(7)


def known_bmi(data: PartyData) -> np.ndarray:
    bmi = data.column("bmi")
    return bmi[~np.isnan(bmi)]


def grid_points(low: float, high: float, step: float) -> np.ndarray:
    return np.round(low + step * np.arange(round((high - low) / step) + 1), 6)


def on_grid(value: float, points: np.ndarray) -> float | str:
    """numpy's quantile rounded up to the grid (or out of range)."""
    if value <= points[0]:
        return "below"
    if value > points[-1]:
        return "above"
    return float(points[np.searchsorted(points, value - 1e-9)])


# ------------------------------------------------------------------ template, validate


def test_registered_and_template_names_it() -> None:
    assert isinstance(ANALYSES["quantiles"], QuantilesAnalysis)
    template = load_template(PROTOCOLS / "quantiles.toml")
    assert template.analysis == "quantiles"
    assert QA.bits == 48
    params = bind(variable="bmi", q="0.5", low="10", high="80")
    assert params["step"] == 0.1
    QA.validate(params)


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"low": "80", "high": "10"}, "must be less than high"),
        ({"low": "10", "high": "10"}, "must be less than high"),
        ({"low": "10", "high": "80", "step": "0.3"}, "whole number of steps"),
        ({"low": "10", "high": "80", "step": "0.01"}, "more than 2000"),
        ({"low": "10", "high": "80", "q": "0.12345"}, "more than 4 decimals"),
    ],
)
def test_validate_refuses_with_a_clear_message(raw: dict[str, str], fragment: str) -> None:
    params = bind(**{"variable": "bmi", "q": "0.5", **raw})
    with pytest.raises(TemplateError, match=fragment):
        QA.validate(params)


def test_validate_beyond_the_template_bounds() -> None:
    """validate holds the rules even for a template with looser bounds."""
    base = dict(bind(variable="bmi", q="0.5", low="10", high="80"))
    for q, fragment in (((0.005,), "outside"), ((0.995,), "outside"), ((0.5,) * 10, "1 to 9")):
        with pytest.raises(TemplateError, match=fragment):
            QA.validate({**base, "q": q})
    with pytest.raises(TemplateError, match="positive"):
        QA.validate({**base, "step": 0.0})
    with pytest.raises(TemplateError, match="positive"):
        QA.validate({**base, "step": -0.1})


def test_validate_accepts_float_noise_and_the_largest_grid() -> None:
    QA.validate(bind(variable="bmi", q="0.5", low="0.1", high="0.3", step="0.1"))
    QA.validate(bind(variable="bmi", q="0.0125,0.9875", low="0", high="1"))
    QA.validate(bind(variable="bmi", q="0.5", low="10", high="30", step="0.01"))  # 2000 bins
    with pytest.raises(TemplateError, match="2001"):
        QA.validate(bind(variable="bmi", q="0.5", low="10", high="30.01", step="0.01"))


# ------------------------------------------------------------------ local input


def test_local_input_counts_values_at_or_below_each_grid_point(data: PartyData) -> None:
    params = bind(variable="bmi", q="0.5", low="10", high="70", step="0.1")
    local = QA.local_input(data, params)
    x = known_bmi(data)
    points = grid_points(10, 70, 0.1)
    assert len(local) == len(points) + 2
    assert all(isinstance(v, int) for v in local)
    missing = int(np.isnan(data.column("bmi")).sum())
    assert local[0] == len(x) == N - missing and local[1] == missing
    assert local[2:] == [int(np.sum(x <= g + 1e-9)) for g in points]
    # values on a grid point belong to it; 9.9 is below the grid, 70.1 above it
    k10, k25, k70 = 2 + 0, 2 + 150, 2 + 600
    assert local[k10] == int(np.sum(x <= 10)) and 10 in x and 9.9 in x
    assert local[k25] == int(np.sum(x <= 25)) and 25 in x
    assert local[k70] == len(x) - int(np.sum(x > 70)) and 70.1 in x


def test_local_input_between_grid_points_rounds_up(data: PartyData) -> None:
    """25.05 lies between 25.0 and 25.1 on a 0.1 grid: it is counted from 25.1 on."""
    params = bind(variable="bmi", q="0.5", low="25", high="25.1", step="0.1")
    x = known_bmi(data)
    assert 25.05 in x
    missing = N - len(x)
    assert QA.local_input(data, params) == [
        len(x),
        missing,
        int(np.sum(x <= 25)),
        int(np.sum(x <= 25.1)),
    ]


def test_local_input_cohort_filter(data: PartyData) -> None:
    params = bind(variable="bmi", q="0.5", low="0", high="100", step="50", sex="F", codes="E11")
    has = np.zeros(data.n_patients, dtype=bool)
    rows = np.char.startswith(data.code_table[data.cond_code_index], "E11")
    has[data.cond_patient[rows]] = True
    bmi = data.column("bmi")[(data.sex == "F") & has]
    x = bmi[~np.isnan(bmi)]
    assert QA.local_input(data, params) == [
        len(x),
        len(bmi) - len(x),
        int(np.sum(x <= 0)),
        int(np.sum(x <= 50)),
        int(np.sum(x <= 100)),
    ]


# ------------------------------------------------------------------ the secure program


class PlainOps:
    """The operations the program uses, on plain numpy integers. `inputs` holds every
    party's input vectors in call order (the program's input order is public)."""

    def __init__(self, inputs: list[list[list[int]]] | None = None) -> None:
        self.inputs = inputs
        self.recorded: list[list[int]] = []

    def input_ints(self, values: Sequence[int], bits: int) -> list[np.ndarray]:
        assert bits == 48 and all(abs(v) < 2**47 for v in values)
        call = len(self.recorded)
        self.recorded.append(list(values))
        if self.inputs is None:
            return [np.array(values, dtype=object)]
        return [np.array(party[call], dtype=object) for party in self.inputs]

    def sum_vectors(self, vectors: Sequence[np.ndarray]) -> np.ndarray:
        return cast(np.ndarray, sum(vectors[1:], vectors[0]))

    def stack(self, arrays: Sequence[np.ndarray], axis: int = 0) -> np.ndarray:
        return np.stack(arrays, axis=axis)

    def sum(self, a: np.ndarray, axis: int | None = None) -> np.ndarray:
        return cast(np.ndarray, a.sum(axis=axis))

    def ge_public(self, a: np.ndarray, bound: float) -> np.ndarray:
        return (a >= bound).astype(object)

    def mul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return cast(np.ndarray, a * b)

    def add(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return cast(np.ndarray, a + b)

    def sub(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return cast(np.ndarray, a - b)

    def add_public(self, a: np.ndarray, c: float) -> np.ndarray:
        return cast(np.ndarray, a + int(c))

    def mul_public(self, a: np.ndarray, c: float) -> np.ndarray:
        assert c == int(c)
        return cast(np.ndarray, a * int(c))

    def matmul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return cast(np.ndarray, a @ b)

    def reshape(self, a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        return a.reshape(shape)


def run_plain(parties: list[PartyData], params: BoundParameters, threshold: int) -> list[float]:
    """Every party's secure program on plain numbers: what the coordinator would open."""

    locals_ = [QA.local_input(d, params) for d in parties]
    recorded = []
    for local in locals_:  # each party's own input vectors
        ops = PlainOps()
        asyncio.run(QA.flat_program(local, params, threshold)(cast(SecureOps, ops)))
        recorded.append(ops.recorded)
    ops = PlainOps(recorded)
    secrets = asyncio.run(QA.flat_program(locals_[0], params, threshold)(cast(SecureOps, ops)))
    return [float(v) for s in secrets for v in np.asarray(s).ravel()]


def test_program_and_finalize_follow_numpy_inverted_cdf() -> None:
    parties = [make_data(1, 300), make_data(2, 150), make_data(3, 500)]
    qs = [0.01, 0.1, 0.25, 0.5, 0.6543, 0.75, 0.9, 0.99]
    params = bind(variable="bmi", q=",".join(map(str, qs)), low="10", high="70")
    result = QA.release(run_plain(parties, params, T), params, T)
    pooled = np.concatenate([known_bmi(d) for d in parties])
    points = grid_points(10, 70, 0.1)
    assert result["n"] == len(pooled)
    missing = sum(int(np.isnan(d.column("bmi")).sum()) for d in parties)
    assert missing >= T and result["missing"] == missing
    for q, value, note in zip(qs, result["values"], result["notes"], strict=True):
        expected = on_grid(float(np.quantile(pooled, q, method="inverted_cdf")), points)
        if expected == "below":
            assert value is None and note.startswith("below_range")
        elif expected == "above":
            assert value is None and note.startswith("above_range")
        else:
            assert value == expected and note is None
    assert result["suppressed"] == [False] * len(qs)


def test_program_quantile_below_and_above_the_range() -> None:
    parties = [make_data(4, 200), make_data(5, 200)]
    params = bind(variable="bmi", q="0.1,0.5,0.9", low="25", high="30")
    result = QA.release(run_plain(parties, params, T), params, T)
    pooled = np.concatenate([known_bmi(d) for d in parties])
    assert np.quantile(pooled, 0.1, method="inverted_cdf") < 25
    assert np.quantile(pooled, 0.9, method="inverted_cdf") > 30
    assert result["values"][0] is None and result["notes"][0].startswith("below_range")
    assert result["values"][2] is None and result["notes"][2].startswith("above_range")
    assert "low" in result["notes"][0] and "high" in result["notes"][2]
    assert result["values"][1] == on_grid(
        float(np.quantile(pooled, 0.5, method="inverted_cdf")), grid_points(25, 30, 0.1)
    )
    assert result["suppressed"] == [False, False, False]


def test_program_suppresses_without_threshold_patients_each_side() -> None:
    parties = [make_data(6, 40)]
    params = bind(variable="bmi", q="0.05,0.25,0.5,0.75", low="0", high="100", step="1")
    n = len(known_bmi(parties[0]))
    threshold = n // 4  # q*n >= t for q = 0.25, 0.5, 0.75 but not 0.05
    result = QA.release(run_plain(parties, params, threshold), params, threshold)
    assert result["suppressed"] == [True, False, False, False]
    assert result["values"][0] is None and result["notes"][0] is None
    assert result["n"] == n
    result = QA.release(run_plain(parties, params, n + 1), params, n + 1)
    assert result["suppressed"] == [True] * 4 and result["n"] is None


# ------------------------------------------------------------------ finalize


def opened(
    bits: list[int], indices: list[int], n: int, n_bit: int = 1, missing: int = 0
) -> list[float]:
    """What the program opens: released bits and indices, then for n and the missing
    count their bits and masked values (a missing count of 0 is below any threshold)."""
    masked = [float(b * k) for b, k in zip(bits, indices, strict=True)]
    missing_bit = int(missing >= T)
    counts = [float(n_bit), float(missing_bit), float(n_bit * n), float(missing_bit * missing)]
    return [*map(float, bits), *masked, *counts]


def test_finalize_json_shape() -> None:
    params = bind(variable="bmi", q="0.25,0.5,0.75,0.9", low="10", high="80")
    result = QA.release(opened([1, 1, 0, 1], [127, 0, 0, 701], 500), params, 11)
    assert result == {
        "variable": "bmi",
        "q": [0.25, 0.5, 0.75, 0.9],
        "values": [22.7, None, None, None],
        "suppressed": [False, False, True, False],
        "notes": [None, result["notes"][1], None, result["notes"][3]],
        "n": 500,
        "missing": None,
        "resolution": 0.1,
        "range": [10.0, 80.0],
        "method": METHOD,
        "missing_values": "excluded; their count is missing",
        "threshold": 11,
    }
    assert result["notes"][1].startswith("below_range") and "low" in result["notes"][1]
    assert result["notes"][3].startswith("above_range") and "high" in result["notes"][3]
    assert "inverted_cdf" in METHOD


def test_finalize_rounds_to_the_grid_decimals() -> None:
    params = bind(variable="bmi", q="0.5", low="0.5", high="100.5", step="0.25")
    assert QA.release(opened([1], [5], 50), params, T)["values"] == [1.75]
    params = bind(variable="bmi", q="0.5", low="-10", high="200", step="5")
    assert QA.release(opened([1], [3], 50), params, T)["values"] == [5.0]
    params = bind(variable="bmi", q="0.5", low="0.05", high="10.05", step="0.1")
    assert QA.release(opened([1], [3], 50), params, T)["values"] == [0.35]


def test_finalize_tolerates_fixed_point_noise_and_refuses_inconsistent_outputs() -> None:
    params = bind(variable="bmi", q="0.5,0.9", low="10", high="80")
    noisy = [v + 1e-5 for v in opened([1, 1], [100, 200], 40)]
    assert QA.release(noisy, params, T)["values"] == [20.0, 30.0]
    for bad in (
        opened([1, 1], [100, 200], 40)[:-1],  # wrong length
        opened([1, 2], [100, 200], 40),  # not a bit
        [1.0, 0.0, 100.0, 5.0, 1.0, 40.0],  # suppressed but nonzero
        opened([1, 1], [100, 702], 40),  # index beyond B + 1
        opened([1, 1], [100, 200], 0, n_bit=0),  # released quantile without n
        [1.0, 1.0, 100.0, 200.0, 0.0, 40.0],  # suppressed n but nonzero
        opened([1, 1], [100.5, 200], 40),  # type: ignore[list-item]
    ):
        with pytest.raises(ValueError):
            QA.release(bad, params, T)


@pytest.mark.parametrize("bins", [1, 3, 8, 10, 15, 24])
def test_two_step_search_finds_every_crossing_position(bins: int) -> None:
    """The block search gives index t for a crossing at every grid position t = 0..B+1,
    whether or not B + 1 fills the S x S layout."""
    n = 100
    for crossing in range(bins + 2):
        cum = [0 if k < crossing else n for k in range(bins + 1)]
        program = quantiles_program([n, 0, *cum], [5000], threshold=1)
        opened = asyncio.run(program(cast(SecureOps, PlainOps())))
        released, index = opened["released"], opened["indices"]
        assert list(released) == [1] and list(index) == [crossing], (bins, crossing)
