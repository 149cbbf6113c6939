"""Release rules, attacked on a real local federation with data this test builds
(issue 12): no analysis releases a mean, sd, quantile, bin or count computed from fewer
than the small-cell threshold of patients (item 1); a hospital with few or no cohort
patients takes part in an iterates-mode model, which is refused without naming anyone
when the other hospitals' patients fall short (item 2); progress notes carry only the
iteration counter (item 3); an unknown column's error names that column only (item 4).

The data: three hospitals of 200 synthetic patients, plus
- a 0/1 column `rare`, 1 for three patients (two at hospital-1, one at hospital-2)
  whose bmi is an outlier far above everyone else's (the planted secrets), and
  `common` = 1 - rare (three zeros);
- diagnosis codes planted on complete cases (bmi, hba1c and readmit_30d present):
  Q99.1 on 3 / 140 / 140 patients of hospitals 1 / 2 / 3, Q99.2 on 0 / 140 / 140,
  Q99.3 on 3 / 5 / 140 (hospital-3's others are 8 < 11), Q99.9 on the rare three;
- `huge` (sbp, one value of hospital-2 beyond 2^14) and `flag` (readmit_30d, one 2 at
  hospital-3): values one hospital cannot use.
Every expected value comes from numpy/pandas on the pooled files (tests/_stats_truth).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from smpc_ehr.client import Client, JobFailed, Progress
from smpc_ehr.local.federation import LocalFederation, down
from tests import _stats_truth as truth
from tests._model_truth import check_against_pooled, pooled_fit, pooled_test_rows
from tests._stats_jobs import assert_not_disclosed, check_moments, eps, numbers_in, template
from tests._truth import released_tenths
from tests.federations import make_data, start_federation

THRESHOLD = 11
SITES = ("hospital-1", "hospital-2", "hospital-3")
RARE_BMI = {"hospital-1": [61.3, 58.7], "hospital-2": [63.9], "hospital-3": []}
COHORTS = {"Q99.1": (3, 140, 140), "Q99.2": (0, 140, 140), "Q99.3": (3, 5, 140)}
RARE_CODE = "Q99.9"
ONSET = "2020-01-01"
SECRETS = [61.3, 58.7, 63.9, float(np.mean([61.3, 58.7, 63.9]))]
"""The rare patients' bmi values and their mean: never in any result."""


def _plant(data: Path) -> None:
    for site in SITES:
        folder = data / site
        frame = pd.read_csv(folder / "patients.csv", dtype=str, keep_default_na=False)
        complete = [
            i
            for i in frame.index
            if frame.at[i, "bmi"] and frame.at[i, "hba1c"] and frame.at[i, "readmit_30d"]
        ]
        rare, others = complete[: len(RARE_BMI[site])], complete[len(RARE_BMI[site]) :]
        # `huge`: sbp, but one patient of hospital-2 beyond the fixed-point range;
        # `flag`: readmit_30d, but one patient of hospital-3 has a 2.
        frame["huge"] = frame["sbp"]
        frame["flag"] = frame["readmit_30d"]
        if site == "hospital-2":
            frame.loc[complete[-1], "huge"] = "20000"
        if site == "hospital-3":
            frame.loc[complete[-1], "flag"] = "2"
        frame["rare"] = "0"
        frame.loc[rare, "rare"] = "1"
        frame["common"] = (frame["rare"] == "0").astype(int).astype(str)
        # `paired`: 0/1 with many ones and zeros, but 1 together with readmit_30d for
        # one patient only (at hospital-1): their 2 x 2 table has a cell of 1.
        readmit = frame["readmit_30d"]
        frame["paired"] = np.where(readmit == "", "", np.where(frame.index % 2 == 0, "1", "0"))
        frame.loc[readmit == "1", "paired"] = "0"
        frame["half"] = (frame.index % 2).astype(str)  # 0/1 with four large cells
        if site == "hospital-1":
            frame.loc[frame.index[readmit == "1"][0], "paired"] = "1"
        # `scarce`: measured for two patients at hospitals 1 and 2 only (4 in all).
        frame["scarce"] = ""
        if site != "hospital-3":
            frame.loc[complete[-3:-1], "scarce"] = ["7.5", "8.25"]
        frame.loc[rare, "bmi"] = [str(v) for v in RARE_BMI[site]]
        planted = [(frame.at[i, "patient_id"], RARE_CODE) for i in rare]
        index = SITES.index(site)
        for code, sizes in COHORTS.items():
            assert sizes[index] <= len(others)
            planted += [(frame.at[i, "patient_id"], code) for i in others[: sizes[index]]]
        frame.to_csv(folder / "patients.csv", index=False)
        with (folder / "conditions.csv").open("a") as out:
            out.writelines(f"{pid},{code},{ONSET}\n" for pid, code in planted)


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = make_data(tmp_path_factory.mktemp("planted"), 3, 200, seed=12)
    _plant(data)
    return data


@pytest.fixture(scope="module")
def fed(planted: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFederation]:
    state = tmp_path_factory.mktemp("planted-state")
    federation = start_federation(planted, state)
    yield federation
    down(state, timeout=3.0)


def run(
    fed: LocalFederation, name: str, params: dict[str, Any], backend: str = "mpyc"
) -> dict[str, Any]:
    with Client.from_state(fed.state_dir) as client:
        return client.run(template(name), params, backend=backend).result


def fails(fed: LocalFederation, name: str, params: dict[str, Any], backend: str = "mpyc") -> str:
    with pytest.raises(JobFailed) as err:
        run(fed, name, params, backend)
    return str(err.value)


def assert_absent(result: dict[str, Any], secrets: list[float]) -> None:
    """None of the secrets appears in the result, as a value or in its text."""
    assert_not_disclosed(result, secrets, set(numbers_in(result)))


def frame_of(data: Path, **cohort: Any) -> pd.DataFrame:
    return truth.cohort_frame(data, **cohort)


def test_the_planted_data_is_what_the_attacks_need(planted: Path) -> None:
    everyone = frame_of(planted)
    assert (everyone["rare"] == 1).sum() == 3
    assert (
        everyone.loc[everyone["rare"] == 1, "bmi"].min()
        > everyone.loc[everyone["rare"] == 0, "bmi"].max()
    )
    assert len(frame_of(planted, codes=RARE_CODE)) == 3


# ------------------------------------------------------------ item 1: small groups


def test_summary_suppresses_a_small_stratum_and_releases_the_rest(
    fed: LocalFederation, planted: Path
) -> None:
    result = run(fed, "summary", {"variables": "bmi,hba1c", "by": "rare"})
    small = result["strata"]["1"]["variables"]
    for name in ("bmi", "hba1c"):
        assert small[name]["suppressed"] is True
        assert all(small[name][k] is None for k in ("n", "mean", "variance", "sd", "se"))
    big = result["strata"]["0"]["variables"]["bmi"]
    want = truth.summary(frame_of(planted), ["bmi"], "rare")["0"]["bmi"]
    assert big["n"] == want["n"] and big["mean"] == pytest.approx(want["mean"], rel=1e-9)
    rare = frame_of(planted)
    hba1c = rare.loc[rare["rare"] == 1, "hba1c"]
    assert_absent(result, [*SECRETS, float(hba1c.mean())])


def test_ttest_suppresses_a_small_group_and_refuses_the_test(fed: LocalFederation) -> None:
    result = run(fed, "ttest", {"variable": "bmi", "group": "rare"})
    assert result["groups"]["1"]["suppressed"] is True
    assert result["groups"]["1"]["mean"] is None and result["groups"]["1"]["n"] is None
    assert result["groups"]["0"]["n"] is not None
    assert result["statistic"] is None and result["estimate"] is None
    assert "fewer than 11" in result["test_refused"]
    assert_absent(result, SECRETS)


def test_correlation_of_a_small_cohort_is_suppressed(fed: LocalFederation) -> None:
    result = run(fed, "correlation", {"variables": "bmi,hba1c", "codes": RARE_CODE})
    assert result["suppressed"] is True
    assert result["n"] is None and result["means"] is None and result["matrix"] is None
    assert_absent(result, SECRETS)


def test_tail_quantiles_are_suppressed_and_the_median_released(
    fed: LocalFederation, planted: Path
) -> None:
    # 283 patients: 0.02 * 283 < 11 patients below the 2% point, as many above the 98%.
    params = {"variable": "bmi", "q": [0.02, 0.5, 0.98], "low": 10, "high": 70, "step": 0.1}
    result = run(fed, "quantiles", {**params, "codes": "Q99.1"})
    want = truth.quantiles(frame_of(planted, codes="Q99.1"), "bmi", params["q"])
    assert want["n"] == 283
    assert result["suppressed"] == [True, False, True]
    assert result["values"][0] is None and result["values"][2] is None
    assert result["values"][1] == pytest.approx(want["values"][1], abs=0.1 + 1e-9)
    tails = [want["values"][0], want["values"][2]]
    assert_absent(result, [v for v in tails if v != result["values"][1]])


def test_quantile_at_the_top_of_everyone_does_not_reach_the_outliers(
    fed: LocalFederation,
) -> None:
    params = {"variable": "bmi", "q": [0.99], "low": 10, "high": 70, "step": 0.1}
    result = run(fed, "quantiles", params)  # ~590 patients: 1% is fewer than 11
    assert result["suppressed"] == [True] and result["values"] == [None]
    assert_absent(result, SECRETS)


def test_histogram_bin_of_the_outliers_is_suppressed(fed: LocalFederation, planted: Path) -> None:
    edges = [10, 20, 30, 40, 50, 60, 70]
    result = run(fed, "histogram", {"variable": "bmi", "edges": edges})
    bmi = frame_of(planted)["bmi"].dropna()
    want, _ = np.histogram(bmi, bins=edges)
    assert 1 <= want[-1] < THRESHOLD  # [60, 70]: two of the rare patients
    for got, count in zip(result["counts"], want, strict=True):
        assert got == (int(count) if count >= THRESHOLD else None)
    assert result["suppressed"][-1] is True


def test_contingency_and_odds_ratio_suppress_the_rare_cells(fed: LocalFederation) -> None:
    table = run(fed, "contingency", {"row": "rare", "col": "sex"})
    assert table["counts"][1] == [None, None, None]
    assert table["test"] is None and table["row_totals"] is None and table["n"] is None
    odds = run(fed, "odds_ratio", {"exposure": "rare", "outcome": "readmit_30d"})
    assert odds["table"]["exposed"] == {"outcome_1": None, "outcome_0": None}
    assert odds["odds_ratio"] is None and odds["estimate_refused"]
    count = run(fed, "rare_disease_count", {"codes": RARE_CODE})
    assert count["count"] is None and count["suppressed"] is True


def test_evaluation_bins_of_few_patients_release_no_mean(
    fed: LocalFederation, planted: Path
) -> None:
    features = ["bmi", "hba1c", "sbp"]
    params = {"outcome": "readmit_30d", "features": ",".join(features)}
    result = run(fed, "logistic_regression", {**params, "test_fraction": 0.3, "seed": 4})
    rows = pooled_test_rows(planted, 4, 0.3)[["readmit_30d", *features]].dropna()
    beta = np.array([result["coefficients"][n] for n in ["(intercept)", *features]])
    scores = 1 / (1 + np.exp(-(beta[0] + rows[features].to_numpy() @ beta[1:])))
    tenth = np.minimum((scores * 10).astype(int), 9)
    y = rows["readmit_30d"].to_numpy()
    sizes = np.bincount(tenth, minlength=10)
    events = np.bincount(tenth, weights=y, minlength=10).astype(int)
    shown_rows, shown_events = released_tenths(sizes, events, THRESHOLD)
    small = 0
    evaluation = result["evaluation"]
    for k, released in enumerate(evaluation["calibration"]):
        in_bin = tenth == k
        n = int(in_bin.sum())
        small += 0 < n < THRESHOLD
        if not shown_rows[k]:
            assert released["n"] is None and released["mean_predicted"] is None
            assert released["observed_rate"] is None
            if n:  # the bin's mean score is nowhere (the bin edges are, in the text)
                secret = float(scores[in_bin].mean())
                assert not any(np.isclose(x, secret, rtol=1e-6) for x in numbers_in(result))
        else:
            assert released["n"] == n
            assert released["mean_predicted"] == pytest.approx(scores[in_bin].mean(), rel=1e-6)
            rate = released["observed_rate"]
            assert rate == (pytest.approx(events[k] / n) if shown_events[k] else None)
    # No hidden count follows from the released ones: the hidden tenths hold at least
    # the threshold together (rows and events alike), and the confusion matrix (whose
    # total the rows add up to) is released whole or not at all.
    for half in (slice(0, 5), slice(5, 10)):  # each half adds up to a confusion total
        for counts, shown in ((sizes, shown_rows), (events, shown_events)):
            hidden = counts[half][~shown[half]].sum()
            assert hidden == 0 or hidden >= THRESHOLD or shown[half].sum() == 0
    confusion = [c for row in evaluation["confusion"] for c in row]
    assert all(c is None for c in confusion) or None not in confusion
    if None not in confusion:
        assert sum(confusion) == len(rows)
    assert small >= 1, "the data must give a bin of 1 to 10 held-out patients"


# ------------------------------------------ item 1: means of 0/1 variables (counts)


PROPORTION_ERROR = 2e-8
"""MPyC's stated precision for a pooled mean of 0/1 values: eps (|mean| + sd), with
eps = 8 P e 2^-32 (P = 3 parties, e = 2 units of rounding; docs/statistics.md)."""


def correlation_error(frame: pd.DataFrame, columns: list[str]) -> float:
    """MPyC's stated precision for a correlation (docs/statistics.md): 2 eps (1 + max
    |mean| / sd)^2, eps = 8 P e 2^-32 for P = 3 parties (e = 2), over the complete cases."""
    complete = frame[columns].dropna()
    ratio = float((complete.mean().abs() / complete.std(ddof=0)).max())
    return 2 * (8 * 3 * 2 * 2.0**-32) * (1 + ratio) ** 2


def binary_secrets(column: pd.Series) -> list[float]:
    """What would give a 0/1 column's count of ones with n: its mean (either way
    round), its sample variance and sd (0 and 1 left out: they are everywhere)."""
    known = column.dropna()
    p = float(known.mean())
    values = [p, 1 - p, float(known.var(ddof=1)), float(known.std(ddof=1))]
    return [v for v in values if v not in (0.0, 1.0)]


def stratum_secrets(frame: pd.DataFrame, name: str) -> list[float]:
    """`binary_secrets` of a column in each of F and M."""
    return [s for lvl in ("F", "M") for s in binary_secrets(frame.loc[frame["sex"] == lvl, name])]


def test_a_small_n_does_not_follow_from_its_missing_count(
    fed: LocalFederation, planted: Path
) -> None:
    """n + missing is the cohort's size, which bmi's released n and missing give: a
    released missing count of `scarce` (596) would give its hidden n (4)."""
    frame = frame_of(planted)
    assert frame["scarce"].notna().sum() == 4
    result = run(fed, "summary", {"variables": "bmi,scarce"})
    bmi, scarce = result["variables"]["bmi"], result["variables"]["scarce"]
    assert bmi["n"] is not None and bmi["n"] + (bmi["missing"] or 0) <= len(frame)
    assert scarce["n"] is None and scarce["missing"] is None, scarce
    assert_absent(result, [4.0, float(len(frame) - 4)])


@pytest.mark.parametrize("backend", ["mpyc", "crypten"])
def test_summary_withholds_a_0_1_mean_of_few_ones_or_zeros(
    fed: LocalFederation, planted: Path, backend: str
) -> None:
    frame = frame_of(planted)
    result = run(fed, "summary", {"variables": "rare,common,readmit_30d"}, backend)
    variables = result["variables"]
    want = truth.summary(frame, ["rare", "common", "readmit_30d"])[""]
    for name in ("rare", "common"):  # 3 ones, 3 zeros: n shown, the proportion not
        got = variables[name]
        assert all(got[k] is None for k in ("mean", "variance", "sd", "se")), got
        assert got["n"] == want[name]["n"] and got["mean_suppressed"] is True
    released = variables["readmit_30d"]  # many ones and zeros: released as before
    assert released["mean_suppressed"] is False and released["n"] == want["readmit_30d"]["n"]
    if backend == "mpyc":
        tolerance = PROPORTION_ERROR
        assert released["mean"] == pytest.approx(want["readmit_30d"]["mean"], abs=tolerance)
        assert released["variance"] == pytest.approx(want["readmit_30d"]["variance"], abs=tolerance)
    else:  # CrypTen's stated precision (docs/statistics.md), as every statistics test
        check_moments(released, want["readmit_30d"], eps(backend, 3), backend)
    assert_absent(result, binary_secrets(frame["rare"]))


def test_summary_strata_withhold_a_0_1_mean_of_few_ones(
    fed: LocalFederation, planted: Path
) -> None:
    frame = frame_of(planted)
    result = run(fed, "summary", {"variables": "rare,readmit_30d", "by": "sex"})
    want = truth.summary(frame, ["rare", "readmit_30d"], "sex")
    for level in ("F", "M"):
        block = result["strata"][level]["variables"]
        rare, readmit = block["rare"], block["readmit_30d"]
        assert rare["mean"] is None and rare["sd"] is None
        assert rare["n"] == want[level]["rare"]["n"] and rare["mean_suppressed"] is True
        assert readmit["mean"] == pytest.approx(
            want[level]["readmit_30d"]["mean"], abs=PROPORTION_ERROR
        )
    assert_absent(result, stratum_secrets(frame, "rare"))


def test_ttest_of_a_0_1_variable_with_few_ones_is_refused(
    fed: LocalFederation, planted: Path
) -> None:
    result = run(fed, "ttest", {"variable": "rare", "group": "sex"})
    for level in ("F", "M"):
        assert result["groups"][level]["mean"] is None
        assert result["groups"][level]["n"] is not None
    assert result["statistic"] is None and result["estimate"] is None
    assert "0/1 variable with fewer than 11 ones or zeros" in result["test_refused"]
    frame = frame_of(planted)
    assert_absent(result, stratum_secrets(frame, "rare"))
    fine = run(fed, "ttest", {"variable": "readmit_30d", "group": "sex"})
    assert fine["test_refused"] is None
    for level in ("F", "M"):
        want = truth.summary(frame.loc[frame["sex"] == level], ["readmit_30d"])[""]
        assert fine["groups"][level]["mean"] == pytest.approx(
            want["readmit_30d"]["mean"], abs=PROPORTION_ERROR
        )


def test_correlation_with_a_0_1_variable_of_few_ones_withholds_the_moments(
    fed: LocalFederation, planted: Path
) -> None:
    frame = frame_of(planted)
    result = run(fed, "correlation", {"variables": "bmi,rare"})
    want = truth.correlation(frame, ["bmi", "rare"])
    assert result["means"] is None and result["covariance"] is None and result["matrix"] is None
    assert result["n"] == want["n"] and result["moments_suppressed"] is True
    complete = frame[["bmi", "rare"]].dropna()
    assert_absent(result, [*binary_secrets(complete["rare"]), *SECRETS])
    fine = run(fed, "correlation", {"variables": "bmi,readmit_30d"})
    want = truth.correlation(frame, ["bmi", "readmit_30d"])
    assert fine["moments_suppressed"] is False and fine["n"] == want["n"]
    assert np.allclose(fine["means"], want["means"], rtol=1e-8, atol=PROPORTION_ERROR)
    tolerance = correlation_error(frame, ["bmi", "readmit_30d"])
    assert np.allclose(fine["matrix"], want["matrix"], rtol=0, atol=tolerance)


def test_two_0_1_variables_release_no_small_cell_of_their_table(
    fed: LocalFederation, planted: Path
) -> None:
    """Two 0/1 variables' means and covariance give their 2 x 2 table (n11 = N (cov +
    m_a m_b)): `paired` and readmit_30d each have many ones and zeros, but only one
    patient has both; withheld. Two with four large cells are released as pandas."""
    frame = frame_of(planted)
    complete = frame[["paired", "readmit_30d"]].dropna()
    table = pd.crosstab(complete["paired"], complete["readmit_30d"])
    assert table.loc[1, 1] == 1 and table.to_numpy().sum() - 1 >= 3 * THRESHOLD
    assert min(complete["paired"].sum(), complete["readmit_30d"].sum()) >= THRESHOLD
    result = run(fed, "correlation", {"variables": "paired,readmit_30d"})
    assert result["moments_suppressed"] is True and result["matrix"] is None, result
    assert result["n"] == len(complete)
    fine = run(fed, "correlation", {"variables": "half,readmit_30d"})
    want = truth.correlation(frame, ["half", "readmit_30d"])
    assert min(pd.crosstab(frame["half"], frame["readmit_30d"]).to_numpy().ravel()) >= THRESHOLD
    assert fine["moments_suppressed"] is False and fine["n"] == want["n"]
    tolerance = correlation_error(frame, ["half", "readmit_30d"])
    assert np.allclose(fine["matrix"], want["matrix"], rtol=0, atol=tolerance)


# ------------------------------------------------- item 2: no hospital is named


def _logistic(fed: LocalFederation, codes: str, backend: str = "mpyc", **extra: Any) -> Any:
    params = {"outcome": "readmit_30d", "features": "bmi,hba1c", "codes": codes, **extra}
    return run(fed, "logistic_regression", params, backend)


@pytest.mark.parametrize(
    ("codes", "backend"), [("Q99.1", "mpyc"), ("Q99.1", "crypten"), ("Q99.2", "mpyc")]
)
def test_a_hospital_with_few_or_no_cohort_patients_takes_part(
    fed: LocalFederation, planted: Path, codes: str, backend: str
) -> None:
    result = _logistic(fed, codes, backend)
    want = pooled_fit(frame_of(planted, codes=codes), "readmit_30d", ["bmi", "hba1c"], 0.0)
    check_against_pooled(result, want, ["bmi", "hba1c"])


def test_statistics_with_a_hospital_of_no_cohort_patients(
    fed: LocalFederation, planted: Path
) -> None:
    frame = frame_of(planted, codes="Q99.2")  # hospital-1 has none of these patients
    summary = run(fed, "summary", {"variables": "bmi,hba1c", "codes": "Q99.2"})
    correlation = run(fed, "correlation", {"variables": "bmi,hba1c", "codes": "Q99.2"})
    for name in ("bmi", "hba1c"):
        want = truth.summary(frame, [name])[""][name]
        got = summary["variables"][name]
        scale = abs(want["mean"]) + want["variance"] ** 0.5  # eps (|mean| + sd): statistics.md
        assert got["n"] == want["n"]
        assert got["mean"] == pytest.approx(want["mean"], abs=eps("mpyc", 3) * scale)
        assert got["variance"] == pytest.approx(want["variance"], abs=eps("mpyc", 3) * scale**2)
    want = truth.correlation(frame, ["bmi", "hba1c"])
    assert correlation["n"] == want["n"]
    tolerance = correlation_error(frame, ["bmi", "hba1c"])
    assert np.allclose(correlation["matrix"], want["matrix"], rtol=0, atol=tolerance)


@pytest.mark.parametrize("codes", ["Q99.1", "Q99.2"])
def test_full_mode_with_a_hospital_of_three_or_no_patients_runs(
    fed: LocalFederation, planted: Path, codes: str
) -> None:
    result = _logistic(fed, codes, "crypten", mode="full")
    want = pooled_fit(frame_of(planted, codes=codes), "readmit_30d", ["bmi", "hba1c"], 0.0)
    assert result["n"] == want["n"] == {"Q99.1": 283, "Q99.2": 280}[codes]
    got = np.array([result["coefficients"][n] for n in ["(intercept)", "bmi", "hba1c"]])
    # Full mode's stated precision (docs/models.md): within 0.05 standard errors.
    assert np.abs((got - want["beta"]) / want["se"]).max() <= 0.05


@pytest.mark.parametrize(
    "params",
    [
        {"outcome": "rare", "features": "sbp"},  # 3 events: the first step tells them
        {"outcome": "readmit_30d", "features": "sbp", "categorical": "rare"},  # mean 3 / N
    ],
)
def test_a_small_group_the_fit_would_reveal_is_refused(
    fed: LocalFederation, params: dict[str, str]
) -> None:
    message = fails(fed, "logistic_regression", params)
    assert "fewer than 11 patients of the other hospitals" in message, message
    assert not re.search(r"hospital-\d", message), message


def test_two_tiny_hospitals_are_refused_without_naming_anyone(fed: LocalFederation) -> None:
    for backend in ("mpyc", "crypten"):
        message = fails(
            fed,
            "logistic_regression",
            {"outcome": "readmit_30d", "features": "bmi,hba1c", "codes": "Q99.3"},
            backend,
        )
        assert "fewer than 11 patients of the other hospitals" in message, message
        assert not re.search(r"hospital-\d|party", message), message


@pytest.mark.parametrize(("backend", "mode"), [("mpyc", "iterates"), ("crypten", "full")])
def test_a_0_1_feature_of_few_ones_is_refused_without_naming_anyone(
    fed: LocalFederation, backend: str, mode: str
) -> None:
    """`rare` as a numeric feature: its joint mean (shown to the hospitals and in the
    result) times N would be its count of ones, 3; refused jointly, naming no one."""
    params = {"outcome": "readmit_30d", "features": "bmi,rare", "mode": mode}
    message = fails(fed, "logistic_regression", params, backend)
    assert "fewer than 11 patients of the other hospitals" in message, message
    assert "0/1 feature" in message and not re.search(r"hospital-\d|party", message)


# ------------------------------------------------------ items 3 and 4: side channels


@pytest.mark.parametrize(("backend", "mode"), [("mpyc", "iterates"), ("crypten", "full")])
def test_progress_notes_carry_only_the_counter(
    fed: LocalFederation, backend: str, mode: str
) -> None:
    notes: list[Progress] = []
    params = {"outcome": "readmit_30d", "features": "bmi,hba1c", "mode": mode}
    with Client.from_state(fed.state_dir) as client:
        result = client.run(
            template("logistic_regression"), params, backend=backend, on_progress=notes.append
        )
    newton = [p for p in notes if p.stage == "newton"]
    assert [p.step for p in newton] == list(range(1, result.result["iterations"] + 1))
    for note in notes:
        party, _, message = note.message.partition(": ")
        assert party in SITES, note  # the reporting party, prefixed by the coordinator
        assert not re.search(r"\d", message), note  # no step size, no other number


def test_unknown_column_names_only_that_column(fed: LocalFederation) -> None:
    message = fails(fed, "summary", {"variables": "bmi,no_such_lab"})
    assert "'no_such_lab'" in message, message
    for other in ("hba1c", "sbp", "ldl", "creatinine", "rare"):
        assert other not in message, message


def test_unusable_values_are_refused_jointly_without_naming_anyone(fed: LocalFederation) -> None:
    for name, params in [
        ("summary", {"variables": "bmi,huge"}),
        ("contingency", {"row": "flag", "col": "sex"}),
    ]:
        for backend in ("mpyc", "crypten"):
            message = fails(fed, name, params, backend)
            assert "at least one hospital cannot be used" in message, message
            assert not re.search(r"hospital-\d", message), message


def test_kmeans_hides_a_cluster_whose_0_1_feature_has_few_ones(fed: LocalFederation) -> None:
    """`rare` as a feature (3 ones in all): a shown centroid's rare coordinate times its
    shown size would be the cluster's count of rare patients; every cluster holding
    any of them is hidden (as a small one), while `half` (many ones and zeros in each
    cluster) leaves its clusters shown."""
    params = {"features": "hba1c,rare", "k": 2, "n_init": 1, "standardize": "no"}
    params["init"] = "5.0,0.0,8.0,0.0"
    result = run(fed, "kmeans", params)
    for centroid, size in zip(result["centroids"], result["sizes"], strict=True):
        assert centroid is None or centroid[1] == pytest.approx(0.0, abs=1e-9), result
        assert (centroid is None) == (size is None)
    fine = run(fed, "kmeans", {**params, "features": "hba1c,half"})
    assert all(size is not None for size in fine["sizes"]), fine


def test_kmeans_profile_withholds_a_0_1_mean_of_few_ones(fed: LocalFederation) -> None:
    """A cluster's size is released and its profile mean of `rare` times that size would
    be its count of rare patients (at most 3, below the threshold): withheld in every
    cluster, while readmission, with many ones and zeros, is still shown somewhere."""
    params = {"features": "hba1c,sbp", "k": 2, "n_init": 1, "profile": "rare,readmit_30d"}
    result = run(fed, "kmeans", params)
    assert any(size is not None for size in result["sizes"])
    assert all(profile["rare"] is None for profile in result["profiles"]), result["profiles"]
    assert any(profile["readmit_30d"] is not None for profile in result["profiles"])
