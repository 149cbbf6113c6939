"""Every analysis template end to end on the in-process federation (the fast tier).

Each job goes through the real coordinator, party servicers and job runners in one event
loop (smpc_ehr/testing/federation.py): submission checks, every party's Prepare and
local step, the secure programs over the plaintext reference ops
(smpc_ehr/testing/reference.py, MPyC's stated precision) exchanging messages through in-
memory job channels, the coordinator's opening and release, on the same synthetic data
as the slow tier's 3-party federation (`data3`). Results are checked with the slow
tier's own checks and oracles (the tests beside each analysis package, over
tests/_truth.py, tests/_stats_truth.py and tests/_model_truth.py), at MPyC's tolerances:
the reference promises MPyC's precision.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.cluster import KMeans

import smpc_ehr.analyses.diagnostics.selftest.test_selftest as conformance
import smpc_ehr.analyses.models.kmeans.test_kmeans as kmeans
import smpc_ehr.analyses.models.logistic.test_logistic as logistic
import smpc_ehr.analyses.statistics.contingency.test_contingency as contingency
import smpc_ehr.analyses.statistics.correlation.test_correlation as correlation
import smpc_ehr.analyses.statistics.count.test_count as counts
import smpc_ehr.analyses.statistics.histogram.test_histogram as histogram
import smpc_ehr.analyses.statistics.odds_ratio.test_odds_ratio as odds_ratio
import smpc_ehr.analyses.statistics.quantiles.test_quantiles as quantiles
import smpc_ehr.analyses.statistics.summary.test_summary as summary
import smpc_ehr.analyses.statistics.ttest.test_ttest as ttest
import tests._model_truth as model_truth
import tests._stats_jobs as stats
from smpc_ehr.errors import TemplateError
from smpc_ehr.testing.federation import Hospital, InProcessFederation, JobFailed
from smpc_ehr.testing.reference import REFERENCE_PRECISION
from tests import _stats_truth as truth
from tests._truth import truth_counts
from tests.federations import COUNT_TEMPLATE, PROTOCOLS

THRESHOLD = 11

TEMPLATES_RUN = {
    "rare_disease_count",
    "backend_selftest",
    "summary",
    "correlation",
    "histogram",
    "quantiles",
    "contingency",
    "ttest",
    "odds_ratio",
    "kmeans",
    "logistic_regression",
}
"""The templates this module runs: a new template gets its test here, and its name."""


def test_every_template_runs_in_process() -> None:
    assert {path.stem for path in PROTOCOLS.glob("*.toml")} == TEMPLATES_RUN


@pytest.fixture(scope="module")
def fed(data3: Path) -> InProcessFederation:
    return InProcessFederation.from_folder(data3, THRESHOLD)


@dataclass
class InProcessCombo:
    """What the statistics packages' checks read of a federation (its `Combo`), here in
    process; `backend` "mpyc" because the reference keeps MPyC's precision."""

    fed: InProcessFederation
    data: Path
    parties: int = 3
    backend: str = "mpyc"
    cache: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def eps(self) -> float:
        return stats.eps(self.backend, self.parties)

    def run(self, key: str) -> dict[str, Any]:
        if key not in self.cache:
            name, params = stats.JOBS[key]
            self.cache[key] = self.fed.run(stats.template(name), params).result
            assert self.cache[key]["threshold"] == THRESHOLD
        return self.cache[key]


@pytest.fixture(scope="module")
def combo(fed: InProcessFederation, data3: Path) -> InProcessCombo:
    return InProcessCombo(fed, data3)


# ------------------------------------------------------------------ statistics


@pytest.mark.parametrize("key", ["summary", "summary_sex", "summary_readmit"])
def test_summary(combo: InProcessCombo, key: str) -> None:
    summary.test_summary(combo, key)


def test_correlation(combo: InProcessCombo) -> None:
    correlation.test_correlation(combo)


def test_histogram(combo: InProcessCombo) -> None:
    histogram.test_histogram(combo)


@pytest.mark.parametrize("key", ["quantiles_bmi", "quantiles_sbp"])
def test_quantiles(combo: InProcessCombo, key: str) -> None:
    quantiles.test_quantiles(combo, key, stats.JOBS[key][1])


def test_contingency(combo: InProcessCombo) -> None:
    contingency.test_contingency_released_with_chi_square(combo)
    contingency.test_contingency_with_small_cell_refuses_test(combo)


def test_ttest(combo: InProcessCombo) -> None:
    ttest.test_welch_ttest(combo)


def test_odds_ratio(combo: InProcessCombo) -> None:
    odds_ratio.test_odds_ratio(combo)


# ------------------------------------------------------------------ counts


@pytest.mark.parametrize(
    ("params", "truth_args"), counts.CASES, ids=[str(c[0]) for c in counts.CASES]
)
def test_counts_equal_pooled_plaintext(
    fed: InProcessFederation, data3: Path, params: dict, truth_args: dict
) -> None:
    result = fed.run(COUNT_TEMPLATE, params).result
    assert result["threshold"] == counts.THRESHOLD == THRESHOLD
    counts.check_against_truth(
        result, truth_counts(data3, params["codes"].split(","), **truth_args)
    )


def test_a_small_nonzero_count_is_suppressed(fed: InProcessFederation, data3: Path) -> None:
    assert 1 <= truth_counts(data3, ["E75.2"])[()] < THRESHOLD
    result = fed.run(COUNT_TEMPLATE, {"codes": "E75.2"}).result
    assert result == {"count": None, "suppressed": True, "threshold": THRESHOLD}


def test_the_threshold_is_the_largest_minimum_of_the_hospitals(data3: Path) -> None:
    strict = InProcessFederation.from_folder(data3, [11, 400, 11])
    params = {"codes": "E11", "by": "sex"}
    result = strict.run(COUNT_TEMPLATE, params).result
    truth_table = truth_counts(data3, ["E11"], by=("sex",))
    assert result["threshold"] == 400
    for cell in result["cells"]:
        shown = truth_table[(cell["sex"],)] >= 400
        assert cell["suppressed"] is not shown and (cell["count"] is None) is not shown


# ------------------------------------------------------------------ backend self-test


@pytest.mark.parametrize("n", [2, 3, 5])
def test_every_operation_is_within_the_stated_precision(fed: InProcessFederation, n: int) -> None:
    """The selftest battery at the reference's precision: its promise is a backend's."""
    parties = InProcessFederation(
        [Hospital(f"h{i}", fed.hospitals[0].data, THRESHOLD) for i in range(n)]
    )
    seed, size = 1000 + n, 12
    result = parties.run(PROTOCOLS / "backend_selftest.toml", {"seed": seed, "size": size}).result
    got = {name: np.asarray(values) for name, values in result.items()}
    assert list(got) == [name for name, _ in conformance.layout(size)]
    allowed = conformance.tolerances(seed, n, size, REFERENCE_PRECISION)
    for name, want in conformance.plaintext_battery(seed, n, size).items():
        assert got[name].shape == want.shape, name
        assert np.all(np.abs(got[name] - want) <= allowed[name]), name


# ------------------------------------------------------------------ models


def test_kmeans_gives_scikit_learns_clustering(fed: InProcessFederation, data3: Path) -> None:
    rows, z, means, sds = kmeans.pooled_rows(data3)
    init = np.round(rows[kmeans.FEATURES].to_numpy(float)[[0, 50, 100, 150]], 6)
    params = dict(features=",".join(kmeans.FEATURES), k=4, init=kmeans.as_numbers(init), n_init=1)
    result = fed.run(kmeans.TEMPLATE, {**params, "profile": "readmit_30d", "tol": 0.0}).result
    reference = KMeans(4, init=(init - means) / sds, n_init=1, tol=0, max_iter=100).fit(z)
    want = reference.cluster_centers_ * sds + means
    assert np.abs(np.asarray(result["centroids"]) / want - 1).max() <= kmeans.RELATIVE["mpyc"]
    assert result["converged"] and result["iterations"] == reference.n_iter_
    assert result["sizes"] == np.bincount(reference.labels_, minlength=4).tolist()


def test_kmeans_full_mode_agrees_with_iterates_mode(fed: InProcessFederation) -> None:
    params = {"features": "hba1c,bmi", "k": 3, "n_init": 1, "seed": 1, "codes": "E11"}
    iterates = fed.run(kmeans.TEMPLATE, params).result
    full = fed.run(kmeans.TEMPLATE, {**params, "mode": "full"}, backend="crypten").result
    assert full["sizes"] == iterates["sizes"]
    np.testing.assert_allclose(full["centroids"], iterates["centroids"], rtol=1e-6)


def test_kmeans_full_mode_is_refused_on_mpyc(fed: InProcessFederation) -> None:
    with pytest.raises(TemplateError, match="crypten backend only"):
        fed.run(kmeans.TEMPLATE, {"features": "bmi", "k": 2, "mode": "full"})


def test_too_many_clusters_for_the_threshold_are_refused_jointly(
    fed: InProcessFederation,
) -> None:
    with pytest.raises(JobFailed, match=r"k x 11 = 33 patients") as refused:
        fed.run(kmeans.TEMPLATE, {"features": "bmi,hba1c", "k": 3, "codes": "E75.22"})
    assert "hospital-" not in str(refused.value)


def test_logistic_fit_matches_pooled_maximum_likelihood(
    fed: InProcessFederation, data3: Path
) -> None:
    features = logistic.FEATURES
    params = {"outcome": "readmit_30d", "features": ",".join(features)}
    result = fed.run(logistic.TEMPLATE, params).result
    want = model_truth.pooled_fit(truth.cohort_frame(data3), "readmit_30d", features, 0.0)
    model_truth.check_against_pooled(result, want, features)


def test_logistic_full_mode_matches_the_pooled_model(fed: InProcessFederation, data3: Path) -> None:
    features = ["bmi", "hba1c"]
    params = {"outcome": "readmit_30d", "features": "bmi,hba1c", "mode": "full", "codes": "E11"}
    result = fed.run(logistic.TEMPLATE, params, backend="crypten").result
    frame = truth.cohort_frame(data3, codes="E11")
    want = model_truth.pooled_fit(frame, "readmit_30d", features, 0.0)
    got = np.array([result["coefficients"][n] for n in ["(intercept)", *features]])
    assert np.abs(got - want["beta"]).max() <= 1e-3, got - want["beta"]


def test_too_few_patients_for_a_fit_are_refused_jointly(fed: InProcessFederation) -> None:
    params = {"outcome": "readmit_30d", "features": "bmi", "codes": "E75.22"}
    with pytest.raises(JobFailed, match="fewer than 11 patients") as refused:
        fed.run(logistic.TEMPLATE, params)
    assert "hospital-" not in str(refused.value)


def test_progress_notes_reach_the_analyst_once_per_step(fed: InProcessFederation) -> None:
    params = {"outcome": "readmit_30d", "features": "bmi,hba1c"}
    outcome = fed.run(logistic.TEMPLATE, params)
    assert outcome.progress and len(outcome.progress) == outcome.result["iterations"]
