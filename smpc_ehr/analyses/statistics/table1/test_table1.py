"""Table 1 end to end: against pandas/scipy on the pooled plaintext (tests/_stats_truth.py),
on the in-process federation (fast tier) and once on a real 3-party MPyC federation;
and the attack: with small counts in the table, no hidden count follows from the shown
numbers by subtraction (from a column's n, from the other groups or the overall)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from smpc_ehr.client import Client
from smpc_ehr.local.federation import LocalFederation
from smpc_ehr.testing.federation import InProcessFederation
from tests import _stats_truth as truth
from tests._stats_jobs import THRESHOLD, template

TEMPLATE = template("table1")
BY_SEX = {
    "variables": "bmi,sbp,hba1c",
    "nonnormal": "hba1c",
    "grid": "3,12,0.1",
    "categorical": "age_band,readmit_30d",
    "group": "sex",
}
SMALL = {
    "variables": "bmi,hba1c",
    "categorical": "sex,readmit_30d",
    "group": "age_band",
    "codes": "E11",
}
"""A cohort whose table has small counts everywhere: young bands below the threshold,
sex U in single figures, few readmissions or missing values per band."""
SMALL_IN_GROUP = {
    "variables": "bmi",
    "categorical": "age_band,sex",
    "group": "readmit_30d",
    "codes": "E11",
}
"""Both groups shown, small counts inside the readmitted one only (young bands, sex U):
the overall count minus the other group's is the attack here."""


def names(params: dict, key: str) -> list[str]:
    return [n for n in params.get(key, "").split(",") if n]


def rows_of(result: dict[str, Any]) -> dict[tuple[str, str | None], dict[str, Any]]:
    return {(r["variable"], r["level"]): r for r in result["rows"]}


def columns_of(result: dict[str, Any]) -> list[str | None]:
    return [c["group"] for c in result["columns"]]


def members(frame: pd.DataFrame, group: str | None, level: str | None) -> pd.DataFrame:
    """The column's patients: a group level, or overall (every patient with a level)."""
    if group is None:
        return frame
    levels = ("F", "M") if group == "sex" else truth.levels(group)
    cat = truth.category(frame, group)
    return frame[cat == level] if level is not None else frame[cat.isin(levels)]


def check_against_pandas(result: dict[str, Any], frame: pd.DataFrame, params: dict) -> None:
    """Every shown number equals (counts) or is within the stated precision of (means,
    SDs; quartiles within one grid step) the pooled plaintext's."""
    group = params.get("group")
    rows = rows_of(result)
    for c, level in enumerate(columns_of(result)):
        part = members(frame, group, level)
        assert rows[("n", None)]["cells"][c] in (len(part), None)
        n = len(part)
        for name in names(params, "variables"):
            values = part[name]
            row, missing = rows[(name, None)], rows[(name, "missing")]["cells"][c]
            assert missing["n"] in (int(values.isna().sum()), None)
            if missing["n"] is not None:
                assert missing["percent"] == pytest.approx(100 * missing["n"] / n)
            known = values.dropna().to_numpy()
            cell = row["cells"][c]
            if row["statistic"] == "mean (SD)" and cell["mean"] is not None:
                sd = known.std(ddof=1)
                assert abs(cell["mean"] - known.mean()) <= 1e-6 * (abs(known.mean()) + sd)
                assert cell["sd"] == pytest.approx(sd, rel=1e-6)
            elif row["statistic"] == "median [IQR]" and cell["median"] is not None:
                for key, q in (("q1", 0.25), ("median", 0.5), ("q3", 0.75)):
                    exact = np.quantile(known, q, method="inverted_cdf")
                    assert cell[key] - 0.1 - 1e-9 < exact <= cell[key] + 1e-9, (key, level)
        for name in names(params, "categorical"):
            cat = truth.category(part, name)
            for lvl in truth.levels(name):
                cell = rows[(name, lvl)]["cells"][c]
                assert cell["n"] in (int((cat == lvl).sum()), None), (name, lvl, level)
                if cell["n"] is not None:
                    assert cell["percent"] == pytest.approx(100 * cell["n"] / n)
            assert rows[(name, "missing")]["cells"][c]["n"] in (int(cat.isna().sum()), None)


def test_table1_by_sex_against_pandas(inprocess: InProcessFederation, data3: Path) -> None:
    result = inprocess.run(TEMPLATE, BY_SEX).result
    frame = truth.cohort_frame(data3)
    check_against_pandas(result, frame, BY_SEX)
    rows = rows_of(result)
    assert columns_of(result) == [None, "F", "M"]
    # Large groups: nothing is hidden in this table.
    assert all(x is not None for r in result["rows"] if r["statistic"] == "n" for x in r["cells"])
    assert all(c["n"] is not None for r in result["rows"] if r["level"] for c in r["cells"])
    assert result["left_out"] == int((frame["sex"] == "U").sum())
    female, male = (members(frame, "sex", s) for s in ("F", "M"))
    for name in ("bmi", "sbp"):
        want = stats.ttest_ind(female[name].dropna(), male[name].dropna(), equal_var=False)
        assert rows[(name, None)]["p"] == pytest.approx(want.pvalue, rel=1e-5)
        assert rows[(name, None)]["test"] == "Welch two-sample t-test"
    assert rows[("hba1c", None)]["p"] is None  # no rank test
    both = members(frame, "sex", None)
    for name in ("age_band", "readmit_30d"):
        table = pd.crosstab(both["sex"], truth.category(both, name))
        want = stats.chi2_contingency(table.to_numpy(), correction=False)
        assert rows[(name, None)]["p"] == pytest.approx(want.pvalue, rel=1e-6)
    # Decimals: from the SD (two significant digits), or the grid's.
    assert [rows[(v, None)]["decimals"] for v in ("bmi", "sbp", "hba1c")] == [1, 0, 1]


def test_table1_anova_over_age_bands(inprocess: InProcessFederation, data3: Path) -> None:
    params = {"variables": "bmi,weight", "group": "age_band"}
    result = inprocess.run(TEMPLATE, params).result
    frame = truth.cohort_frame(data3)
    check_against_pandas(result, frame, params)
    cat = truth.category(frame, "age_band")
    for name in ("bmi", "weight"):
        samples = [frame.loc[cat == band, name].dropna() for band in truth.levels("age_band")]
        row = rows_of(result)[(name, None)]
        assert row["test"] == "one-way ANOVA"
        assert row["p"] == pytest.approx(stats.f_oneway(*samples).pvalue, rel=1e-5)


def test_table1_without_group(inprocess: InProcessFederation, data3: Path) -> None:
    params = {"variables": "sbp", "categorical": "sex", "codes": "E11", "decimals": "2"}
    result = inprocess.run(TEMPLATE, params).result
    frame = truth.cohort_frame(data3, codes="E11")
    check_against_pandas(result, frame, params)
    assert columns_of(result) == [None] and result["group"] is None
    rows = rows_of(result)
    assert rows[("sbp", None)]["decimals"] == 2 and "p" not in rows[("sbp", None)]
    # sex U has a few patients: hidden, and with it the smaller of F and M.
    u = int((frame["sex"] == "U").sum())
    assert 1 <= u < THRESHOLD
    shown = [rows[("sex", s)]["cells"][0]["n"] for s in ("F", "M", "U")]
    assert shown.count(None) == 2 and shown[2] is None


# ------------------------------------------------------------------ the attack


def determined(result: dict[str, Any], blocks: list[tuple[str, tuple[str, ...]]]) -> list[str]:
    """The hidden counts that the shown numbers of the table determine exactly.

    The unknowns are the hidden counts (cells and n's); the equations are what the
    analyst knows holds: each column's cells of a variable add up to its n, and (in a
    grouped table) each overall count and the overall n are the sums of the groups'.
    A hidden count is determined iff its unit vector lies in the row space of the
    equations' matrix over the unknowns (then a combination of the equations gives it).
    """
    cols = len(result["columns"])
    grouped = result["group"] is not None
    rows = rows_of(result)
    unknowns: dict[str, int] = {}
    equations: list[dict[str, float]] = []  # coefficients of unknowns; constants dropped

    def term(label: str, value: int | None, eq: dict[str, float], sign: float) -> None:
        if value is None:
            unknowns.setdefault(label, len(unknowns))
            eq[label] = eq.get(label, 0.0) + sign

    n_cells = rows[("n", None)]["cells"]
    groups = range(1, cols) if grouped else range(0)
    if grouped:
        eq: dict[str, float] = {}
        term("n[0]", n_cells[0], eq, 1.0)
        for g in groups:
            term(f"n[{g}]", n_cells[g], eq, -1.0)
        equations.append(eq)
    for name, levels in blocks:
        for c in range(cols):
            eq = {}
            term(f"n[{c}]", n_cells[c], eq, -1.0)
            for lvl in levels:
                term(f"{name}/{lvl}[{c}]", rows[(name, lvl)]["cells"][c]["n"], eq, 1.0)
            equations.append(eq)
        if grouped:
            for lvl in levels:
                eq = {}
                cells = rows[(name, lvl)]["cells"]
                term(f"{name}/{lvl}[0]", cells[0]["n"], eq, 1.0)
                for g in groups:
                    term(f"{name}/{lvl}[{g}]", cells[g]["n"], eq, -1.0)
                equations.append(eq)
    if not unknowns:
        return []
    matrix = np.array([[eq.get(u, 0.0) for u in unknowns] for eq in equations if eq])
    rank = np.linalg.matrix_rank(matrix)
    found = []
    for label, i in unknowns.items():
        unit = np.zeros((1, len(unknowns)))
        unit[0, i] = 1.0
        if np.linalg.matrix_rank(np.vstack([matrix, unit])) == rank:
            found.append(label)
    return found


def _blocks(params: dict) -> list[tuple[str, tuple[str, ...]]]:
    out = [(v, ("present", "missing")) for v in names(params, "variables")]
    return out + [(name, (*truth.levels(name), "missing")) for name in names(params, "categorical")]


def with_present_rows(result: dict[str, Any], params: dict) -> dict[str, Any]:
    """The table as the analyst can complete it: a continuous variable's patients with
    a value are shown where the mean is (or n minus missing, where both are shown)."""
    rows = list(result["rows"])
    n_cells = rows_of(result)[("n", None)]["cells"]
    for name in names(params, "variables"):
        missing = rows_of(result)[(name, "missing")]["cells"]
        present = [
            {"n": None if m["n"] is None or n is None else n - m["n"]}
            for m, n in zip(missing, n_cells, strict=True)
        ]
        rows.append({"variable": name, "level": "present", "cells": present})
    return {**result, "rows": rows}


@pytest.mark.parametrize("params", [SMALL, SMALL_IN_GROUP], ids=["by_age_band", "by_readmission"])
def test_no_hidden_count_follows_from_the_shown_ones(
    inprocess: InProcessFederation, data3: Path, params: dict
) -> None:
    result = inprocess.run(TEMPLATE, params).result
    frame = truth.cohort_frame(data3, codes="E11")
    check_against_pandas(result, frame, params)
    rows = rows_of(result)
    # The case exercises it: small counts in groups and in the overall column.
    hidden = [
        (key, c)
        for key, row in rows.items()
        if row["level"]
        for c, cell in enumerate(row["cells"])
        if cell["n"] is None
    ]
    assert any(c == 0 for _, c in hidden) and any(c > 0 for _, c in hidden)
    if params is SMALL:  # 0-9 and 10-19 (and a complement)
        assert rows[("n", None)]["cells"].count(None) >= 2
    else:
        assert None not in rows[("n", None)]["cells"]
    table = with_present_rows(result, params)
    assert determined(table, _blocks(params)) == []
    # Every hidden count of 1 to t - 1 is hidden with at least one other in its column,
    # and a hidden column's counts are all hidden.
    for c in range(len(result["columns"])):
        for name, levels in _blocks(params):
            if name in names(params, "variables"):
                continue
            cells = [rows[(name, lvl)]["cells"][c]["n"] for lvl in levels]
            assert cells.count(None) != 1, (name, c)
    # Means only where the column's patients with a value are shown.
    for name in names(params, "variables"):
        for c, cell in enumerate(rows[(name, None)]["cells"]):
            if cell["mean"] is not None:
                assert rows[(name, "missing")]["cells"][c]["n"] is not None


def test_the_attack_check_finds_a_naive_suppression(data3: Path) -> None:
    """`determined` is not vacuous: a table hiding only the small counts (no
    complements) gives them away, by a column's n and by the overall column."""
    frame = truth.cohort_frame(data3, codes="E11")
    levels = truth.levels("sex")
    columns = [{"group": None}, {"group": "0-9"}, {"group": "30-39"}]
    parts = [
        frame[truth.category(frame, "age_band").isin(["0-9", "30-39"])],
        *(frame[truth.category(frame, "age_band") == b] for b in ("0-9", "30-39")),
    ]

    def naive(x: int) -> int | None:
        return x if x == 0 or x >= THRESHOLD else None

    rows = [{"variable": "n", "level": None, "cells": [naive(len(p)) for p in parts]}]
    for lvl in (*levels, "missing"):
        counts = [int((p["sex"] == lvl).sum()) for p in parts]
        rows.append({"variable": "sex", "level": lvl, "cells": [{"n": naive(x)} for x in counts]})
    table = {"group": "age_band", "columns": columns, "rows": rows}
    found = determined(table, [("sex", (*levels, "missing"))])
    assert "sex/U[2]" in found and "n[1]" in found, found


# ------------------------------------------------------------------ a real federation


def test_table1_on_a_real_federation_matches_in_process(
    fed3: LocalFederation, inprocess: InProcessFederation
) -> None:
    params = {
        "variables": "bmi,hba1c",
        "nonnormal": "hba1c",
        "grid": "3,12,0.1",
        "categorical": "sex,readmit_30d",
        "group": "condition",
        "condition_codes": "I10",
        "codes": "E11",
    }
    with Client.from_state(fed3.state_dir) as client:
        real = client.run(TEMPLATE, params).result
    reference = inprocess.run(TEMPLATE, params).result
    assert real["threshold"] == reference["threshold"] == THRESHOLD
    for got, want in zip(real["rows"], reference["rows"], strict=True):
        assert (got["variable"], got["level"]) == (want["variable"], want["level"])
        for a, b in zip(got.get("cells") or [], want.get("cells") or [], strict=True):
            if isinstance(a, dict) and "mean" in a:
                for key in ("mean", "sd"):
                    assert (a[key] is None) == (b[key] is None)
                    if a[key] is not None:
                        assert a[key] == pytest.approx(b[key], rel=1e-7)
            else:
                assert a == b  # counts, percentages and quartiles: exact
        if got.get("p") is not None:
            assert got["p"] == pytest.approx(want["p"], rel=1e-5)
    assert any(c["n"] is None for r in real["rows"] if r["level"] for c in r["cells"])
