"""Table 1 without a federation: the secure program on the plaintext reference over
hand-made tables (each suppression rule, the attack check on each), parameter checks,
the strict render of a real finalised result and its tidy rows."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytest

from smpc_ehr.analyses import ANALYSES
from smpc_ehr.analyses.base import decode_outputs
from smpc_ehr.analyses.common.moments import local_binary, local_moments
from smpc_ehr.analyses.statistics.table1.layout import (
    MOMENT_FIELDS,
    cumulative_differences,
    layout,
)
from smpc_ehr.analyses.statistics.table1.test_table1 import determined, rows_of
from smpc_ehr.errors import TemplateError
from smpc_ehr.testing.federation import execute
from tests._render import FOOTNOTE, T, bind, job, render

Unit = Mapping[str, Any]
"""One party's patients of one unit (group): "values" per continuous variable (NaN =
missing) and "levels" per categorical variable (counts per level, then missing)."""


def local_vector(params: Any, units: Sequence[Unit], left_out: int = 0) -> np.ndarray:
    """What `layout.local_table` makes of these patients (the same layout)."""
    shape = layout(params)
    columns = list(units)
    if shape.grouped:  # the overall column: every unit's patients together
        merged = {
            name: np.concatenate([u["values"][name] for u in units]) for name in shape.variables
        }
        columns.append({"values": merged})
    sizes, cells = [], []
    for unit in units:
        row: list[float] = []
        for block in shape.blocks:
            if block.kind == "continuous":
                missing = int(np.isnan(unit["values"][block.name]).sum())
                row += [len(unit["values"][block.name]) - missing, missing]
            else:
                row += list(unit["levels"][block.name])
        sizes.append(sum(row[: shape.blocks[0].stop]))
        cells.append(row)
    moments = np.zeros((MOMENT_FIELDS, shape.columns, len(shape.variables)))
    for c, column in enumerate(columns):
        for v, name in enumerate(shape.variables):
            x = column["values"][name]
            moments[:, c, v] = (*local_moments(x), *local_binary(x))
    quartiles = [
        cumulative_differences(column["values"][name], g, side)
        for name, g, side in zip(shape.nonnormal, shape.grids, shape.sides, strict=True)
        for column in columns
    ]
    head = np.array([*sizes, left_out], float)
    local = np.concatenate([head, np.ravel(cells), moments.ravel(), *quartiles])
    assert local.size == shape.length
    return local


def opened(params: Any, parties: Sequence[Sequence[Unit]]) -> dict[str, np.ndarray]:
    """Each party's units through the secure program on the reference: what the
    coordinator opens, by name."""
    programs = [
        ANALYSES["table1"].flat_program(local_vector(params, units), params, T) for units in parties
    ]
    outputs = execute(programs)[0]
    flat = [float(v) for secret in outputs for v in np.ravel(secret.value)]
    return decode_outputs(ANALYSES["table1"].outputs(params), flat)


def released(params: Any, parties: Sequence[Sequence[Unit]]) -> dict[str, Any]:
    """`opened`, then `release` as the coordinator does."""
    named = opened(params, parties)
    flat = [
        float(v) for out in ANALYSES["table1"].outputs(params) for v in np.ravel(named[out.name])
    ]
    return ANALYSES["table1"].release(flat, params, T)


def unit(levels: Mapping[str, Sequence[int]], **values: Sequence[float]) -> Unit:
    return {"levels": dict(levels), "values": {k: np.asarray(v, float) for k, v in values.items()}}


def _empty_like(u: Unit) -> Unit:
    return unit({k: [0] * len(v) for k, v in u["levels"].items()}, **{k: [] for k in u["values"]})


def one_hospital(units: Sequence[Unit]) -> list[list[Unit]]:
    """The units at the first of three hospitals, none at the others."""
    return [list(units), [_empty_like(u) for u in units], [_empty_like(u) for u in units]]


def counts(result: dict[str, Any], name: str, level: str) -> list[int | None]:
    return [c["n"] for c in rows_of(result)[(name, level)]["cells"]]


def test_a_small_count_in_a_group_hides_a_complement_and_the_overall_ones() -> None:
    params = bind("table1", categorical="sex", group="condition", condition_codes="E11")
    # condition 0: F 60, M 40, U 3 (small); condition 1: F 30, M 25, U 0.
    result = released(
        params, one_hospital([unit({"sex": [60, 40, 3, 0]}), unit({"sex": [30, 25, 0, 0]})])
    )
    # Columns: overall, 0, 1. U in group 0 is hidden with M (the smallest shown >= t);
    # the overall U and M follow (overall - group 1 would give them).
    assert counts(result, "sex", "U") == [None, None, 0]
    assert counts(result, "sex", "M") == [None, None, 25]
    assert counts(result, "sex", "F") == [90, 60, 30]
    assert determined(result, [("sex", ("F", "M", "U", "missing"))]) == []


def test_the_overall_minus_the_shown_groups_gives_no_small_count() -> None:
    """The attack on hidden groups: age band 60-69 (5 patients) is hidden with its
    complement 50-59; the overall row minus the shown bands would give their cells
    together, here 1 readmitted patient. That overall cell is hidden (with a
    complement), so no subtraction of released numbers gives a count from 1 to t - 1."""
    params = bind("table1", categorical="readmit_30d", group="age_band")
    units = [unit({"readmit_30d": [0, 0, 0]}) for _ in range(10)]
    units[4] = unit({"readmit_30d": [70, 20, 0]})  # 40-49: shown
    units[5] = unit({"readmit_30d": [40, 0, 0]})  # 50-59: the complement of 60-69
    units[6] = unit({"readmit_30d": [4, 1, 0]})  # 60-69: small
    result = released(params, one_hospital(units))
    n = rows_of(result)[("n", None)]["cells"]
    assert n[0] == 135 and n[5] == 90 and n[6] is None and n[7] is None
    ones, zeros = counts(result, "readmit_30d", "1"), counts(result, "readmit_30d", "0")
    assert ones[5] == 20 and ones[0] is None, "overall 21 - 40-49's 20 would give 1"
    assert zeros[0] is None or zeros[0] - zeros[5] >= T
    assert determined(result, [("readmit_30d", ("0", "1", "missing"))]) == []


def test_a_lone_hidden_overall_count_takes_a_complement() -> None:
    params = bind("table1", categorical="sex", group="condition", condition_codes="E11")
    # Group 0 is small (5): hidden, with group 1; the overall U (1) would be the only
    # hidden overall count, and the overall n minus the others would give it.
    result = released(
        params, one_hospital([unit({"sex": [3, 1, 1, 0]}), unit({"sex": [50, 50, 0, 0]})])
    )
    assert rows_of(result)[("n", None)]["cells"] == [105, None, None]
    assert counts(result, "sex", "U") == [None, None, None]
    assert counts(result, "sex", "M") == [None, None, None]  # 51: the smallest shown
    assert counts(result, "sex", "F") == [53, None, None]
    assert counts(result, "sex", "missing") == [0, None, None]
    assert determined(result, [("sex", ("F", "M", "U", "missing"))]) == []


def test_the_overall_mean_needs_every_groups_mean() -> None:
    """A 0/1 variable with 3 ones in group 1: that group's mean is withheld (binary
    rule), and so is the overall one, which with the overall n and group 0's mean and
    n would give group 1's count of ones (overall ones - group 0's)."""
    params = bind("table1", variables="readmit_30d", group="condition", condition_codes="E11")
    zero = [1.0] * 20 + [0.0] * 40
    one = [1.0] * 3 + [0.0] * 27
    result = released(params, one_hospital([unit({}, readmit_30d=zero), unit({}, readmit_30d=one)]))
    means = [c["mean"] for c in rows_of(result)[("readmit_30d", None)]["cells"]]
    assert means == [None, pytest.approx(20 / 60), None]
    assert rows_of(result)[("n", None)]["cells"] == [90, 60, 30]


def test_tests_leave_out_empty_levels_and_groups() -> None:
    """A level no patient has (U) and groups without patients (most age bands) are
    left out of the chi-square test and the t-test (scipy would refuse a zero margin)."""
    from scipy import stats

    params = bind("table1", categorical="sex", group="condition", condition_codes="E11")
    result = released(
        params, one_hospital([unit({"sex": [60, 40, 0, 0]}), unit({"sex": [30, 25, 0, 0]})])
    )
    want = stats.chi2_contingency([[60, 40], [30, 25]], correction=False).pvalue
    assert rows_of(result)[("sex", None)]["p"] == pytest.approx(want)
    params = bind("table1", variables="sbp", group="age_band")
    rng = np.random.default_rng(3)
    a, b = rng.normal(120, 15, 40).round(), rng.normal(130, 15, 50).round()
    units = [unit({}, sbp=[]) for _ in range(10)]
    units[4], units[6] = unit({}, sbp=a), unit({}, sbp=b)
    row = rows_of(released(params, one_hospital(units)))[("sbp", None)]
    assert row["test"] == "Welch two-sample t-test"
    assert row["p"] == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue, rel=1e-6)


def test_nothing_small_is_opened() -> None:
    """What the coordinator opens: every count is 0, or at least the threshold, and
    every masked value (a count, mean, variance or quartile whose bit is 0) is 0."""
    params = bind("table1", categorical="sex", group="condition", condition_codes="E11")
    for tables in (([3, 1, 1, 0], [50, 50, 0, 0]), ([60, 40, 3, 0], [30, 25, 0, 0])):
        named = opened(params, one_hospital([unit({"sex": t}) for t in tables]))
        for bits, values in (
            ("n_shown", "n"),
            ("cells_shown", "cells"),
            ("left_out_shown", "left_out"),
        ):
            assert set(np.unique(named[bits])) <= {0.0, 1.0}
            assert np.all((named[values] == 0) | (named[values] >= T))
            assert np.all(named[values][named[bits] == 0] == 0)
        assert np.any(named["cells_shown"] == 0)  # the cases hide something
    named = opened(*_means_case())
    for bits, values in (("mean_shown", "mean"), ("mean_shown", "variance")):
        assert np.any(named[bits] == 0) and np.all(named[values][named[bits] == 0] == 0)
    assert np.all(named["quartile"][named["quartile_shown"] == 0] == 0)


def test_a_naive_table_would_have_been_attackable() -> None:
    """The same release with the lone overall count shown as small (hidden) and its
    complement shown: `determined` finds it (the check is not vacuous)."""
    params = bind("table1", categorical="sex", group="condition", condition_codes="E11")
    result = released(
        params, one_hospital([unit({"sex": [3, 1, 1, 0]}), unit({"sex": [50, 50, 0, 0]})])
    )
    rows_of(result)[("sex", "M")]["cells"][0]["n"] = 51
    assert determined(result, [("sex", ("F", "M", "U", "missing"))]) == ["sex/U[0]"]


def _means_case() -> tuple[Any, list[list[Unit]]]:
    params = bind(
        "table1", variables="bmi,hba1c", nonnormal="hba1c", grid="4,10,0.5", group="condition",
        condition_codes="E11",
    )  # fmt: skip
    rng = np.random.default_rng(1)
    bmi0 = rng.normal(27, 4, 60).round(1)
    bmi0[:3] = np.nan  # 3 missing: hidden, so the mean goes too
    bmi1 = rng.normal(29, 4, 30).round(1)  # none missing: 0 shown
    hba0 = rng.normal(6, 1, 60).round(1)
    hba1 = rng.normal(7, 1, 30).round(1)
    units = [unit({}, bmi=bmi0, hba1c=hba0), unit({}, bmi=bmi1, hba1c=hba1)]
    return params, one_hospital(units)


def test_means_need_the_present_count_and_quartiles_their_margins() -> None:
    params, parties = _means_case()
    result = released(params, parties)
    bmi1 = parties[0][1]["values"]["bmi"]
    hba0, hba1 = (parties[0][u]["values"]["hba1c"] for u in (0, 1))
    rows = rows_of(result)
    means = [c["mean"] for c in rows[("bmi", None)]["cells"]]
    assert means[1] is None and means[0] is None  # group 0 hides its missing count
    assert means[2] == pytest.approx(bmi1.mean())
    assert counts(result, "bmi", "missing") == [None, None, 0]
    quartiles = rows[("hba1c", None)]["cells"]
    # Group 1 has 30 patients: the median (15 either side) is shown, q1 and q3 (7 on a
    # side) are not; group 0 and overall have 60 and 90 patients: all three.
    assert quartiles[2]["median"] is not None and quartiles[2]["q1"] is None
    for cell, x in ((quartiles[1], hba0), (quartiles[0], np.concatenate([hba0, hba1]))):
        for key, q in (("q1", 0.25), ("median", 0.5), ("q3", 0.75)):
            exact = np.quantile(x, q, method="inverted_cdf")
            assert cell[key] - 0.5 < exact <= cell[key] + 1e-9


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({}, "at least one of"),
        ({"variables": "bmi", "nonnormal": "sbp"}, "nonnormal must be columns of variables"),
        ({"variables": "bmi", "nonnormal": "bmi"}, "grid needs low, high and step"),
        ({"categorical": "sex", "group": "sex"}, "cannot also be a categorical row"),
        ({"variables": "bmi,sbp", "decimals": "1"}, "decimals needs one whole number"),
        ({"variables": "bmi", "categorical": "bmi"}, "either in variables or in categorical"),
    ],
)
def test_bad_parameters_are_refused_with_a_reason(raw: dict[str, str], message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        ANALYSES["table1"].validate(bind("table1", **raw))


def render_case() -> dict[str, Any]:
    """A real finalised Table 1 (the reference program on hand-made patients): groups
    F and M... as condition 0 and 1, a mean, a median, a categorical with small cells."""
    params = bind(
        "table1", variables="sbp,hba1c", nonnormal="hba1c", grid="4,10,0.1",
        categorical="sex", group="condition", condition_codes="E11",
    )  # fmt: skip
    rng = np.random.default_rng(7)
    units = [
        unit({"sex": [700, 640, 4, 0]}, sbp=rng.normal(131, 17, 1344).round(),
             hba1c=rng.normal(5.8, 0.8, 1344).round(1)),
        unit({"sex": [420, 398, 0, 0]}, sbp=rng.normal(139, 19, 818).round(),
             hba1c=rng.normal(7.1, 1.1, 818).round(1)),
    ]  # fmt: skip
    units[0]["values"]["sbp"][:25] = np.nan
    return released(params, one_hospital(units))


def test_render_is_the_papers_table() -> None:
    text = render(render_case(), "table1")
    lines = text.splitlines()
    assert lines[0].split() == ["Overall", "0", "1", "p"]
    assert lines[2].split() == ["n", "2,162", "1,344", "818"]
    sbp = next(x for x in lines if x.startswith("sbp, mean (SD)"))
    assert sbp.split()[3:] == ["134", "(18)", "130", "(16)", "139", "(19)", "<", "1e-16"]
    missing = lines[lines.index(sbp) + 1]
    assert missing.split() == ["missing", "25", "(1.2)", "25", "(1.9)", "0", "(0.0)"]
    hba = next(x for x in lines if x.startswith("hba1c, median [IQR]"))
    assert hba.split()[3:] == ["6.2", "[5.5,", "7.0]", "5.8", "[5.2,", "6.4]", "7.1", "[6.4,",
                               "7.9]", "-"]  # fmt: skip
    f = next(x for x in lines if x.strip().startswith("F "))
    assert f.split() == ["F", "1,120", "(51.8)", "700", "(52.1)", "420", "(51.3)"]
    u = next(x for x in lines if x.strip().startswith("U"))
    assert u.split() == ["U", f"<{T}", f"<{T}", "0", "(0.0)"]
    m = next(x for x in lines if x.strip().startswith("M "))
    assert m.split() == ["M", f"<{T}", f"<{T}", "398", "(48.7)"]  # U's complement
    # Aligned: numbers end where their column's rule ends (right-aligned).
    ends = [m.end() for m in re.finditer(r"-+", lines[1])]
    assert [lines[2].index(x) + len(x) for x in ("2,162", "1,344", "818")] == ends[1:4]
    assert u.index("(0.0)") + len("(0.0)") == ends[3]
    assert FOOTNOTE in text
    assert "left out (no group level): 0" in text
    assert "Welch two-sample t-test" in text
    assert text == render(render_case(), "table1")  # deterministic


def test_strict_render_of_a_job() -> None:
    from smpc_ehr.cli.render import render_result

    text = render_result(job(render_case()), "table1", strict=True)
    assert "sbp, mean (SD)" in text


def test_tidy_rows_carry_every_number() -> None:
    result = render_case()
    rows = ANALYSES["table1"].tidy(result)
    key = {(r["group"], r["variable"], r["term"], r["statistic"]): r for r in rows}
    assert key[("", "", "", "n")]["value"] == 2162
    assert key[("condition=0", "sex", "U", "count")]["suppressed"] is True
    assert key[("condition=1", "sex", "U", "count")]["value"] == 0
    assert key[("", "sbp", "", "p_value")]["note"] == "Welch two-sample t-test"
    assert key[("condition=1", "hba1c", "", "median")]["value"] is not None
