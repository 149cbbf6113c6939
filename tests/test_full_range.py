"""The full modes (CrypTen, rows secret-shared) on features of any clinical magnitude
(issue 12, item 11): the Wisconsin breast cancer data shipped with scikit-learn, split
across 3 hospitals, with `mean_smoothness` (sd 0.014), and two synthetic features:
`tiny` (sd about 1e-3) and `big` (about 3e5, sd about 5e4). Each fit is checked
against a pooled plaintext fit this test computes itself (numpy Newton-Raphson;
scikit-learn's KMeans), with the tolerances of models/logistic/test_logistic.py and
models/kmeans/test_kmeans.py for the full modes.

Before the fix every job here was refused: mean_smoothness and tiny as "(nearly)
constant (standard deviation below 2^-6)", big as "values beyond +-16384".
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import load_breast_cancer

from smpc_ehr.client import Client, JobFailed
from smpc_ehr.local.federation import LocalFederation, down
from tests._model_truth import pooled_fit
from tests.federations import PROTOCOLS, start_federation

LOGISTIC = PROTOCOLS / "logistic_regression.toml"
KMEANS = PROTOCOLS / "kmeans.toml"
HOSPITALS = 3
CANCER = ["mean_radius", "mean_texture", "mean_smoothness"]
WIDE = ["mean_radius", "tiny", "big"]


def cancer_frame() -> pd.DataFrame:
    """The 569 patients with the three published features, `malignant` (0/1) and the
    synthetic `tiny`, `big` and `flat_ish` (1000 plus noise of sd 1e-5: nearly
    constant for its magnitude), each a weak predictor plus noise."""
    data = load_breast_cancer(as_frame=True)
    source = data.frame
    rng = np.random.default_rng(12)
    n = len(source)

    def standardised(name: str) -> np.ndarray:
        values = source[name].to_numpy(float)
        return (values - values.mean()) / values.std()

    frame = pd.DataFrame(
        {
            "mean_radius": source["mean radius"],
            "mean_texture": source["mean texture"],
            "mean_smoothness": source["mean smoothness"],
            "malignant": 1 - data.target.to_numpy(),
        }
    )
    frame["tiny"] = 0.05 + 1e-3 * (0.6 * standardised("mean symmetry") + 0.8 * rng.normal(size=n))
    frame["big"] = 3e5 + 5e4 * (0.6 * standardised("mean concavity") + 0.8 * rng.normal(size=n))
    frame["flat_ish"] = 1000.0 + 1e-5 * rng.normal(size=n)
    return frame


def write_hospitals(frame: pd.DataFrame, out: Path) -> Path:
    """One data folder per hospital (docs/data.md): patients.csv with the numeric
    columns (malignant written as integers, so it is a 0/1 outcome) and an empty
    conditions.csv; patients dealt to hospitals at random."""
    share = np.random.default_rng(3).integers(0, HOSPITALS, len(frame))
    for h in range(HOSPITALS):
        rows = frame[share == h]
        folder = out / f"hospital-{h + 1}"
        folder.mkdir(parents=True)
        patients = pd.DataFrame(
            {
                "patient_id": [f"p{h}-{i}" for i in range(len(rows))],
                "sex": "F",
                "birth_date": "1970-01-01",
            }
        )
        for column in rows.columns:
            patients[column] = rows[column].to_numpy()
        patients.to_csv(folder / "patients.csv", index=False, float_format="%.17g")
        (folder / "conditions.csv").write_text("patient_id,code,onset_date\n")
    return out


@pytest.fixture(scope="module")
def cancer_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_hospitals(cancer_frame(), tmp_path_factory.mktemp("cancer"))


@pytest.fixture(scope="module")
def cancer_federation(
    cancer_data: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalFederation]:
    state = tmp_path_factory.mktemp("cancer-state")
    federation = start_federation(cancer_data, state)
    yield federation
    down(state, timeout=3.0)


def pooled_frame(data: Path) -> pd.DataFrame:
    """Every hospital's rows as written (what the parties read), pooled."""
    folders = sorted(p for p in data.iterdir() if (p / "patients.csv").exists())
    return pd.concat([pd.read_csv(f / "patients.csv") for f in folders], ignore_index=True)


def run(fed: LocalFederation, template: Path, **params: Any) -> dict[str, Any]:
    with Client.from_state(fed.state_dir) as client:
        return client.run(template, params, backend="crypten").result


@pytest.mark.parametrize("features", [CANCER, WIDE], ids=["wisconsin", "tiny-and-big"])
def test_full_logistic_regression_on_any_magnitude(
    cancer_federation: LocalFederation, cancer_data: Path, features: list[str]
) -> None:
    result = run(
        cancer_federation, LOGISTIC, outcome="malignant", features=",".join(features), mode="full"
    )
    want = pooled_fit(pooled_frame(cancer_data), "malignant", features, 0.0)
    names = ["(intercept)", *features]
    got_beta = np.array([result["coefficients"][n] for n in names])
    got_se = np.array([result["std_errors"][n] for n in names])
    assert result["n"] == want["n"] and result["converged"] is True
    # docs/models.md, full mode: within 0.05 standard errors, standard errors within 1 %.
    assert np.abs((got_beta - want["beta"]) / want["se"]).max() <= 0.05, got_beta - want["beta"]
    assert np.abs(got_se / want["se"] - 1).max() <= 0.01, got_se / want["se"]


def test_full_logistic_regression_penalty_in_original_units(
    cancer_federation: LocalFederation, cancer_data: Path
) -> None:
    """The L2 penalty, lambda 4^-e per standardised coefficient (public), against the
    pooled penalised fit; one too strong for a feature's scale is refused."""
    features = ["mean_radius", "mean_texture"]
    result = run(
        cancer_federation,
        LOGISTIC,
        outcome="malignant",
        features=",".join(features),
        l2=20,
        mode="full",
    )
    want = pooled_fit(pooled_frame(cancer_data), "malignant", features, 20.0)
    got = np.array([result["coefficients"][n] for n in ["(intercept)", *features]])
    assert np.abs((got - want["beta"]) / want["se"]).max() <= 0.05, got - want["beta"]
    with pytest.raises(JobFailed, match=r"l2 = 1 is too strong for mode 'full' on tiny"):
        run(cancer_federation, LOGISTIC, outcome="malignant", features="tiny", l2=1, mode="full")


def test_full_kmeans_on_a_feature_with_sd_1e_3(
    cancer_federation: LocalFederation, cancer_data: Path
) -> None:
    # (not big: the template bounds `init` to +-16384)
    features = ["tiny", "mean_smoothness", "mean_radius"]
    x = pooled_frame(cancer_data)[features].to_numpy(float)
    means, sds = x.mean(axis=0), x.std(axis=0)
    init = x[[0, 7]]
    numbers = ",".join(f"{v:.17g}" for v in init.ravel())
    result = run(
        cancer_federation,
        KMEANS,
        features=",".join(features),
        k=2,
        init=numbers,
        tol=0.0,
        mode="full",
    )
    reference = KMeans(2, init=(init - means) / sds, n_init=1, tol=0, max_iter=100).fit(
        (x - means) / sds
    )
    want = reference.cluster_centers_ * sds + means
    got = np.asarray(result["centroids"])
    # As models/kmeans/test_kmeans.py's full mode (a boundary patient may go the other way):
    # centroids within 5e-3 relative, here also within 0.02 standard deviations (the
    # 2^-16 grid in original units would be 1.5 % of tiny's sd), sizes within 1 % of N.
    assert np.abs((got - want) / sds).max() <= 0.02, (got - want) / sds
    assert np.abs(got / want - 1).max() <= 5e-3
    sizes = np.bincount(reference.labels_, minlength=2)
    assert np.abs(np.subtract(result["sizes"], sizes)).max() <= 0.01 * len(x)
    assert result["inertia"] == pytest.approx(reference.inertia_, rel=1e-3)
    assert result["n"] == len(x) and result["converged"]


def test_nearly_constant_for_its_magnitude_is_refused(cancer_federation: LocalFederation) -> None:
    """flat_ish: sd 1e-5 around 1000, below 2^-14 of its magnitude."""
    with pytest.raises(JobFailed, match=r"flat_ish.* constant") as err:
        run(cancer_federation, LOGISTIC, outcome="malignant", features="tiny,flat_ish", mode="full")
    assert "hospital" not in str(err.value), err.value  # decided jointly: no party named


def test_iterates_mode_keeps_its_limit_and_points_to_full(
    cancer_federation: LocalFederation,
) -> None:
    """The iterates mode pools raw moments (a variance of 2.5e9 would overflow), so it
    still refuses values beyond 2^14, naming no hospital (one of its patients has such
    a value), and says which mode takes them."""
    params = {"outcome": "malignant", "features": "big"}
    with (
        Client.from_state(cancer_federation.state_dir) as client,
        pytest.raises(JobFailed, match=r"beyond the fixed-point range.*mode 'full'"),
    ):
        client.run(LOGISTIC, params, backend="mpyc")
