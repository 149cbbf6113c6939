"""The differentially private contingency table (`epsilon`) on the in-process
federation: each released cell is the pooled plaintext's count plus the noise the
parties drew (recorded) and within z noise sd of the truth (tests/_dp_cells.py: ALPHA
= 1e-6 per test); the totals and the chi-square test are scipy's on the noisy table,
with the note that the p-value ignores the noise; a suppressed noisy cell refuses the
test; two runs differ; an exact run draws no noise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from smpc_ehr.analyses.statistics.contingency.analysis import DP_NOTE, DP_SUPPRESSED_REASON
from smpc_ehr.testing.federation import InProcessFederation
from tests import _stats_truth as truth
from tests._dp_cells import (
    check_noisy_cells,
    forbid_noise,
    noisy_run,
    record_noise,
    z_bound,
)
from tests._render import render
from tests._stats_jobs import JOBS, SAME, rel_close, template

CONTINGENCY = template("contingency")
EPSILON = 1.0


def run_noisy(
    fed: InProcessFederation, data: Path, key: str, drawn: list[np.ndarray], z: float
) -> dict:
    """One run of a stats job with epsilon, its cells checked against truth + noise."""
    params = JOBS[key][1]
    frame = truth.cohort_frame(data, condition_codes=params.get("condition_codes"))
    t = truth.table(frame, params["row"], params["col"])
    exact = np.array([*np.ravel(t["counts"]), t["missing"]])
    result, noise, sd = noisy_run(fed, CONTINGENCY, params, drawn, EPSILON, len(exact))
    released = [*(n for line in result["counts"] for n in line), result["missing"]]
    check_noisy_cells(released, exact, noise, sd, z)
    assert result["dp_note"] == DP_NOTE
    return result


def test_dp_chi_square_is_scipys_on_the_noisy_table(
    inprocess: InProcessFederation, data3: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    drawn = record_noise(monkeypatch)
    z = z_bound(2 * 5)  # two runs of 5 cells
    results = [run_noisy(inprocess, data3, "contingency_condition", drawn, z) for _ in range(2)]
    assert results[0]["counts"] != results[1]["counts"], "the noise must really be there"
    result = results[1]
    table = np.array(result["counts"])
    assert result["row_totals"] == table.sum(axis=1).tolist()
    assert result["col_totals"] == table.sum(axis=0).tolist()
    assert result["n"] == int(table.sum()) and result["test_refused"] is None
    chi = truth.chi_square(table.tolist())
    test = result["test"]
    assert rel_close(test["statistic"], chi["statistic"], SAME) and test["df"] == 1
    assert np.allclose(result["expected"], chi["expected"], rtol=SAME, atol=0)
    # 2x2: the residuals' projection has rank 1, along u with u_ij^2 = r_(1-i) c_(1-j),
    # so the noise scales the statistic by 1 + s^2 sum u_ij^2 / E_ij, with df 1.
    r, c = table.sum(axis=1) / table.sum(), table.sum(axis=0) / table.sum()
    u2 = np.outer(r[::-1], c[::-1])
    scale = 1 + result["dp"]["noise_sd"] ** 2 * float((u2 / chi["expected"]).sum())
    assert rel_close(test["scale"], scale, SAME) and rel_close(test["effective_df"], 1, SAME)
    p_value = float(stats.chi2.sf(chi["statistic"] / scale, 1))
    assert rel_close(test["p_value"], p_value, SAME) and test["p_value"] > chi["p_value"]
    text = render(result, "contingency")
    assert f"note: {DP_NOTE}" in text
    assert text.splitlines()[-1].startswith(f"differentially private, epsilon = {EPSILON:g}")


def test_a_suppressed_noisy_cell_refuses_the_test(
    inprocess: InProcessFederation, data3: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # sex x readmit_30d: the U row holds 40 and 10 patients; whether the noisy 10 is
    # released is the noise's decision, and the test follows it.
    drawn = record_noise(monkeypatch)
    result = run_noisy(inprocess, data3, "contingency_sex", drawn, z_bound(7))
    if any(n is None for line in result["counts"] for n in line):
        assert result["test_refused"] == DP_SUPPRESSED_REASON
        assert result["test"] is None and result["n"] is None
    else:
        assert result["test_refused"] is None and result["test"]["df"] == 2


def test_an_exact_table_draws_no_noise(
    inprocess: InProcessFederation, monkeypatch: pytest.MonkeyPatch
) -> None:
    forbid_noise(monkeypatch)
    result = inprocess.run(CONTINGENCY, JOBS["contingency_condition"][1]).result
    assert "dp" not in result and "dp_note" not in result
