"""Joint k-means ("iterates" mode) over real federations against scikit-learn's KMeans
on the pooled plaintext rows, standardised with the pooled means and (population)
standard deviations, which the test computes itself.

Tolerances: with the same initial centroids, the same centroids within the backend's
stated precision (MPyC: 1e-6 relative, the issue's figure; CrypTen: its 2^-16
resolution carried through the pooled means, 1e-3 relative) after the same number of
Lloyd steps; with restarts, the joint inertia within 1 % of scikit-learn's best over as
many restarts.

The fast tier runs the main cases on the in-process federation (tests/_inprocess.py)
at MPyC's tolerances, which the plaintext reference ops promise.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from smpc_ehr.analyses.models.kmeans.release import Released, release_outputs
from smpc_ehr.client import Client, JobFailed, Progress
from smpc_ehr.errors import TemplateError
from smpc_ehr.local.federation import LocalFederation, down
from smpc_ehr.testing.federation import InProcessFederation
from smpc_ehr.testing.federation import JobFailed as InProcessJobFailed
from tests import _stats_truth as truth
from tests.federations import PROTOCOLS, make_data, start_federation

TEMPLATE = PROTOCOLS / "kmeans.toml"
FEATURES = ["hba1c", "bmi", "sbp", "ldl", "egfr", "triglycerides"]
RELATIVE = {"mpyc": 1e-6, "crypten": 1e-4}
"""Centroids in original units: MPyC's 32 fractional bits; CrypTen's 16 (2^-16 of a
standard deviation is about 2e-5 of these features' values)."""
ITERATION_SLACK = {"mpyc": 0, "crypten": 1}
"""With tol = 0 the fit stops at the first step in which no patient changes cluster.
CrypTen's truncations round at random (2^-16 of a standard deviation), so a patient
within that of a tie between two centroids may settle one step earlier or later than
in float64 (seen once in CI: 21 against scikit-learn's 22); MPyC rounds
deterministically at 2^-32."""


def run(
    fed: LocalFederation, backend: str, notes: list[Progress] | None = None, **params: Any
) -> dict[str, Any]:
    with Client.from_state(fed.state_dir) as client:
        result = client.run(
            TEMPLATE, params, backend=backend, on_progress=None if notes is None else notes.append
        )
    assert result.backend == backend
    return result.result


def pooled_rows(data: Path) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    """The complete cases, their standardised features, and the pooled means and sds."""
    frame = truth.cohort_frame(data)
    rows = frame[frame[FEATURES].notna().all(axis=1)]
    x = rows[FEATURES].to_numpy(float)
    means, sds = x.mean(axis=0), x.std(axis=0)
    return rows, (x - means) / sds, means, sds


def as_numbers(centroids: np.ndarray) -> str:
    return ",".join(f"{v:.6f}" for v in centroids.ravel())


@pytest.mark.parametrize(
    ("fed_name", "data_name", "backend"),
    [("fed3", "data3", "mpyc"), ("fed3", "data3", "crypten"), ("fed5", "data5", "mpyc")],
)
def test_given_initial_centroids_give_scikit_learns_clustering(
    request: pytest.FixtureRequest, fed_name: str, data_name: str, backend: str
) -> None:
    fed: LocalFederation = request.getfixturevalue(fed_name)
    data: Path = request.getfixturevalue(data_name)
    rows, z, means, sds = pooled_rows(data)
    init = np.round(rows[FEATURES].to_numpy(float)[[0, 50, 100, 150]], 6)
    result = run(
        fed,
        backend,
        features=",".join(FEATURES),
        k=4,
        init=as_numbers(init),
        n_init=1,
        profile="readmit_30d",
        tol=0.0,  # as scikit-learn's: stop when no patient changes cluster
    )
    reference = KMeans(4, init=(init - means) / sds, n_init=1, tol=0, max_iter=100).fit(z)
    want = reference.cluster_centers_ * sds + means
    got = np.asarray(result["centroids"])
    assert np.abs(got / want - 1).max() <= RELATIVE[backend], got / want - 1
    assert result["converged"]
    assert abs(result["iterations"] - reference.n_iter_) <= ITERATION_SLACK[backend]
    labels = reference.labels_
    assert result["sizes"] == np.bincount(labels, minlength=4).tolist()
    assert result["n"] == len(rows)
    assert result["inertia"] == pytest.approx(reference.inertia_, rel=RELATIVE[backend])
    everyone = truth.cohort_frame(data)
    assert result["missing"] == int(everyone[FEATURES].isna().any(axis=1).sum())
    readmit = rows["readmit_30d"].to_numpy(float)
    shown = 0
    for c, profile in enumerate(result["profiles"]):  # mean readmission per cluster
        present = (labels == c) & ~np.isnan(readmit)
        ones = int(readmit[present].sum())
        if min(ones, int(present.sum()) - ones) < 11:  # a 0/1 mean gives its counts
            assert profile["readmit_30d"] is None
        else:
            shown += 1
            assert profile["readmit_30d"] == pytest.approx(readmit[present].mean(), abs=1e-4)
    assert shown, "the data must give a cluster whose readmission mean is released"


def test_restarts_find_scikit_learns_best_inertia(fed3: LocalFederation, data3: Path) -> None:
    _, z, _, _ = pooled_rows(data3)
    notes: list[Progress] = []
    result = run(fed3, "mpyc", notes, features=",".join(FEATURES), k=4, n_init=3, seed=2)
    best = KMeans(4, n_init=3, random_state=0).fit(z)
    assert result["inertia"] <= best.inertia_ * 1.01
    assert result["converged"] and sum(s for s in result["sizes"] if s) <= result["n"]
    # Progress carries the step counter only (the leakage grants the analyst no moves).
    assert notes and all(note.stage == "lloyd" for note in notes)
    assert all(note.message.partition(":")[2].strip() == "" for note in notes), notes[0]


def test_the_planted_phenotypes_are_recovered(fed3: LocalFederation, data3: Path) -> None:
    """Adjusted Rand index of each hospital's own labels (nearest released centroid)
    against the generator's phenotypes: what a hospital can compute locally."""
    features = ["bmi", "hba1c", "sbp", "ldl", "hdl", "triglycerides", "egfr"]
    result = run(fed3, "mpyc", features=",".join(features), k=4, n_init=3, seed=4)
    centroids = np.asarray(result["centroids"])
    frame = truth.cohort_frame(data3)
    rows = frame[frame[features].notna().all(axis=1)]
    x = rows[features].to_numpy(float)
    means, sds = x.mean(axis=0), x.std(axis=0)
    z, c = (x - means) / sds, (centroids - means) / sds
    labels = ((z[:, None, :] - c[None, :, :]) ** 2).sum(axis=2).argmin(axis=1)
    scores = []
    for site, group in rows.assign(label=labels).groupby("site"):
        planted = pd.read_csv(data3 / str(site) / "truth_phenotypes.csv", dtype={"patient_id": str})
        merged = group.merge(planted, on="patient_id")
        scores.append(adjusted_rand_score(merged["phenotype"], merged["label"]))
    pooled = KMeans(4, n_init=3, random_state=0).fit(z).labels_
    print("adjusted Rand index per hospital:", [round(s, 3) for s in scores])
    assert min(scores) >= 0.3  # the phenotypes overlap by design; chance is 0
    assert adjusted_rand_score(pooled, labels) >= 0.95  # the pooled clustering's partition


def test_too_many_clusters_for_the_threshold_are_refused(fed3: LocalFederation) -> None:
    with pytest.raises(JobFailed, match=r"k x 11 = 33 patients") as refused:
        run(fed3, "mpyc", features="bmi,hba1c", k=3, codes="E75.22")
    assert "hospital-" not in str(refused.value)


OUTLIER = {"crp": 250.0, "hba1c": 9.5}
"""The one patient (hospital-1's first) whose C-reactive protein is far above
everyone's (0.5 to 15)."""
SCORE = {"A": 0.0, "B": 11.5, "C": 2.6, "D": 8.6, "E": 5.6}
"""A 1-d feature built so that one Lloyd step from centroids -2, 14, 5 gives cluster 2
the 30 C, 30 D and 2 E patients (mean 5.6, at least 20 of them from the other
hospitals for each hospital), after which C goes to cluster 0 (2.6 from 0 < 3.0 from
5.6) and D to cluster 1 (2.9 from 11.5 < 3.0): the final cluster 2 holds the 2 E
patients only."""


def score_group(hospital: int, row: int) -> str:
    """Which SCORE group a row is in: 10 C and 10 D per hospital, 2 E at hospital-1,
    the rest A or B by parity."""
    if row < 10:
        return "C"
    if row < 20:
        return "D"
    if hospital == 0 and row < 22:
        return "E"
    return "A" if row % 2 else "B"


@pytest.fixture(scope="module")
def odd_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three small hospitals; the first lacks `hdl`; `crp` has one outlier (OUTLIER);
    `score` the groups of SCORE."""
    data = make_data(tmp_path_factory.mktemp("kmeans-odd"), 3, 300, seed=23)
    folders = sorted(p for p in data.iterdir() if (p / "patients.csv").exists())
    draw = np.random.default_rng(5)
    for i, folder in enumerate(folders):
        frame = pd.read_csv(folder / "patients.csv", dtype=str, keep_default_na=False)
        if i == 0:
            frame = frame.drop(columns="hdl")
        crp = draw.uniform(0.5, 15.0, len(frame)).round(2)
        if i == 0:
            crp[0] = OUTLIER["crp"]
            frame.loc[0, "hba1c"] = str(OUTLIER["hba1c"])
        frame["crp"] = [f"{v:g}" for v in crp]
        frame["score"] = [f"{SCORE[score_group(i, r)]:g}" for r in range(len(frame))]
        frame.to_csv(folder / "patients.csv", index=False)
    return data


@pytest.fixture(scope="module")
def odd_federation(
    odd_data: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalFederation]:
    state = tmp_path_factory.mktemp("kmeans-odd-state")
    federation = start_federation(odd_data, state)
    yield federation
    down(state, timeout=3.0)


ATTACK = {"features": "crp,hba1c", "k": 2, "init": "5,6,250,6", "max_iter": 1}
"""The issue's attack: one initial centroid at the outlier, one Lloyd step."""


def test_a_centroid_of_one_patient_is_refused_in_iterates_mode(
    odd_federation: LocalFederation,
) -> None:
    """Before the rule, the second centroid came back as the outlier's own values."""
    with pytest.raises(JobFailed, match=r"fewer than 11 patients of the other hosp") as refused:
        run(odd_federation, "mpyc", standardize="no", **ATTACK)
    message = str(refused.value)
    assert "hospital-" not in message and "try fewer clusters" in message


def test_a_suppressed_size_cannot_be_derived_in_iterates_mode(
    odd_federation: LocalFederation, odd_data: Path
) -> None:
    """Each step's clusters pass (see SCORE), but the final one holds 2 patients: it is
    hidden with the smaller other cluster, and N and the inertia are withheld, so no
    subtraction gives its size (before: N - the two others = 2)."""
    x = truth.cohort_frame(odd_data)
    x = x[x["score"].notna()]
    result = run(
        odd_federation,
        "mpyc",
        features="score",
        k=3,
        standardize="no",
        init="-2,14,5",
        max_iter=1,
        profile="readmit_30d",
    )
    values = x["score"].to_numpy(float)
    first = np.argmin(np.abs(values[:, None] - np.array([-2.0, 14.0, 5.0])), axis=1)
    centroids = np.array([values[first == c].mean() for c in range(3)])
    final = np.bincount(np.argmin(np.abs(values[:, None] - centroids), axis=1), minlength=3)
    assert final[2] == 2  # the data do what SCORE says
    big = int(np.argmax(final))
    assert result["sizes"] == [int(final[c]) if c == big else None for c in range(3)]
    assert result["suppressed_clusters"] == [c for c in range(3) if c != big]
    assert result["n"] is None and result["inertia"] is None
    assert result["centroids"][2] is None and result["profiles"][2] == {"readmit_30d": None}
    assert result["centroids"][big] == pytest.approx([centroids[big]], abs=1e-6)
    assert "suppressed too" in result["notes"][0]


def test_an_empty_cluster_is_refused_with_advice(odd_federation: LocalFederation) -> None:
    with pytest.raises(JobFailed, match=r"try fewer clusters \(k\), other initial") as refused:
        run(odd_federation, "mpyc", features="bmi,sbp", k=3, init="25,120,30,140,500,500")
    assert "hospital-" not in str(refused.value)


def test_a_feature_one_hospital_lacks_is_named(odd_federation: LocalFederation) -> None:
    with pytest.raises(JobFailed, match=r"hospital-1.*no numeric column 'hdl'"):
        run(odd_federation, "mpyc", features="bmi,hdl", k=2)


def test_init_of_the_wrong_length_is_refused(fed3: LocalFederation) -> None:
    with pytest.raises(Exception, match="init must give k x features"):
        run(fed3, "mpyc", features="bmi,hba1c", k=2, init="1,2,3")


# --- mode "full": rows secret-shared, Lloyd's algorithm inside MPC (CrypTen) -----------

SMALL_FEATURES = ["bmi", "sbp", "hba1c"]


FULL_INERTIA = 1e-3
"""Full mode's inertia, sum ||z||^2 - sum_c n_c ||c_c||^2 inside MPC: a difference of
two sums of about N d, each off by CrypTen's roundings (measured up to 2e-4 relative)."""
FULL_CENTROIDS = 5e-3
FULL_MOVED = 0.01
"""Full mode standardises and scores inside MPC, so a patient within CrypTen's
resolution (about 1e-4 in squared standardised distance) of a cluster boundary may go
the other way at some step, and the last steps follow (measured: 1 run in 3 stops a
step early with 2 of about 800 patients in the other cluster). Each such patient moves
a centroid of some 200 patients by about 1/200 of its distance from it: sizes within
1 % of N and centroids within 5e-3 relative (measured 2e-5, or 1.1e-3 in such a run)."""


def test_full_mode_agrees_with_iterates_mode(
    odd_federation: LocalFederation, odd_data: Path
) -> None:
    x = truth.cohort_frame(odd_data)[SMALL_FEATURES].dropna().to_numpy(float)
    means, sds = x.mean(axis=0), x.std(axis=0)
    init = np.round(x[[0, 40, 80]], 6)
    params = {"features": ",".join(SMALL_FEATURES), "k": 3, "init": as_numbers(init), "tol": 0.0}
    full = run(odd_federation, "crypten", mode="full", **params)
    iterates = run(odd_federation, "crypten", **params)
    reference = KMeans(3, init=(init - means) / sds, n_init=1, tol=0, max_iter=100).fit(
        (x - means) / sds
    )
    want = reference.cluster_centers_ * sds + means
    sizes = np.bincount(reference.labels_, minlength=3).tolist()
    assert np.abs(np.asarray(iterates["centroids"]) / want - 1).max() <= RELATIVE["crypten"]
    assert iterates["sizes"] == sizes and iterates["iterations"] == reference.n_iter_
    assert iterates["inertia"] == pytest.approx(reference.inertia_, rel=RELATIVE["crypten"])
    assert np.abs(np.asarray(full["centroids"]) / want - 1).max() <= FULL_CENTROIDS
    assert np.abs(np.subtract(full["sizes"], sizes)).max() <= FULL_MOVED * len(x)
    assert full["inertia"] == pytest.approx(reference.inertia_, rel=FULL_INERTIA)
    for result in (full, iterates):
        assert result["n"] == len(x) and result["converged"]
    assert full["mode"] == "full" and "learn only" in full["leakage"]


def test_full_mode_restarts_pick_the_same_clustering(odd_federation: LocalFederation) -> None:
    """Both modes start restart r from the same random partition (the seed) and run to
    strict convergence; the smallest inertia, chosen inside MPC in full mode, is the
    clustering the iterates mode picks (within full mode's resolution, as above)."""
    params = {"features": ",".join(SMALL_FEATURES), "k": 3, "n_init": 2, "seed": 9, "tol": 0.0}
    full = run(odd_federation, "crypten", mode="full", **params)
    iterates = run(odd_federation, "crypten", **params)
    assert np.abs(np.subtract(full["sizes"], iterates["sizes"])).max() <= FULL_MOVED * full["n"]
    got, want = np.asarray(full["centroids"]), np.asarray(iterates["centroids"])
    assert np.abs(got / want - 1).max() <= FULL_CENTROIDS
    assert full["inertia"] == pytest.approx(iterates["inertia"], rel=FULL_INERTIA)


def test_full_mode_is_refused_on_mpyc(fed3: LocalFederation) -> None:
    with pytest.raises(Exception, match="crypten backend only"):
        run(fed3, "mpyc", features="bmi,sbp", k=2, mode="full")


def test_full_mode_suppresses_a_one_patient_cluster_and_its_complement(
    odd_federation: LocalFederation, odd_data: Path
) -> None:
    """The attack in full mode, with a third cluster: the outlier's cluster and the
    smaller other one are hidden, N and the inertia withheld (before: her centroid was
    released and N minus the two other sizes gave 1)."""
    frame = truth.cohort_frame(odd_data)[["crp", "hba1c"]].dropna()
    x = frame.to_numpy(float)
    init = np.array([[3.0, 5.5], [10.0, 7.0], [OUTLIER["crp"], OUTLIER["hba1c"]]])
    means, sds = x.mean(axis=0), x.std(axis=0)
    z, c = (x - means) / sds, (init - means) / sds
    labels = ((z[:, None, :] - c[None, :, :]) ** 2).sum(axis=2).argmin(axis=1)
    sizes = np.bincount(labels, minlength=3)
    assert sizes[2] == 1  # only the outlier
    big = int(np.argmax(sizes))
    result = run(
        odd_federation,
        "crypten",
        mode="full",
        features="crp,hba1c",
        k=3,
        init=as_numbers(init),
        max_iter=1,
    )
    assert result["suppressed_clusters"] == [c for c in range(3) if c != big]
    assert result["centroids"][2] is None and result["sizes"][2] is None
    assert result["n"] is None and result["inertia"] is None
    assert abs(result["sizes"][big] - sizes[big]) <= FULL_MOVED * len(x)
    want = x[labels == big].mean(axis=0)
    assert np.abs(np.asarray(result["centroids"][big]) / want - 1).max() <= FULL_CENTROIDS


def test_a_withheld_value_must_open_as_zero() -> None:
    """The coordinator's decoding refuses a release whose hidden values are not 0: a
    mask off by one unit of 2^-16 would carry a hidden centroid times 2^-16."""
    k, d, q = 3, 1, 1
    opened = {
        "shown": [1, 0, 0],
        "sizes": [40, 0, 0],
        "all_shown": [0],
        "n": [0],
        "inertia": [0],
        "inertia_scale": [0],
        "emptied": [0],
        "missing_shown": [1],
        "missing": [5],
        "centroids": [[2.5], [0], [0]],
        "profile_shown": [[1], [0], [0]],
        "profile_means": [[0.25], [0], [0]],
    }
    spec = release_outputs(k, d, q)
    assert [out.name for out in spec] == list(opened)
    named = {out.name: np.asarray(opened[out.name], float) for out in spec}
    assert all(named[out.name].shape == out.shape for out in spec)
    out = Released.decode(named)
    assert out.sizes == [40, None, None] and out.centroids == [[2.5], None, None]
    assert out.n is None and out.inertia is None and out.missing == 5
    assert out.profiles == [[0.25], [None], [None]]
    named["centroids"][2, 0] = 250 * 2.0**-16  # the hidden third centroid, masked by 2^-16
    with pytest.raises(ValueError, match="withheld"):
        Released.decode(named)


# ------------------------------------------------------------------ in process (fast tier)


def test_given_initial_centroids_give_scikit_learns_clustering_in_process(
    inprocess: InProcessFederation, data3: Path
) -> None:
    rows, z, means, sds = pooled_rows(data3)
    init = np.round(rows[FEATURES].to_numpy(float)[[0, 50, 100, 150]], 6)
    params = dict(features=",".join(FEATURES), k=4, init=as_numbers(init), n_init=1)
    result = inprocess.run(TEMPLATE, {**params, "profile": "readmit_30d", "tol": 0.0}).result
    reference = KMeans(4, init=(init - means) / sds, n_init=1, tol=0, max_iter=100).fit(z)
    want = reference.cluster_centers_ * sds + means
    assert np.abs(np.asarray(result["centroids"]) / want - 1).max() <= RELATIVE["mpyc"]
    assert result["converged"] and result["iterations"] == reference.n_iter_
    assert result["sizes"] == np.bincount(reference.labels_, minlength=4).tolist()


def test_full_mode_agrees_with_iterates_mode_in_process(inprocess: InProcessFederation) -> None:
    params = {"features": "hba1c,bmi", "k": 3, "n_init": 1, "seed": 1, "codes": "E11"}
    iterates = inprocess.run(TEMPLATE, params).result
    full = inprocess.run(TEMPLATE, {**params, "mode": "full"}, backend="crypten").result
    assert full["sizes"] == iterates["sizes"]
    np.testing.assert_allclose(full["centroids"], iterates["centroids"], rtol=1e-6)


def test_full_mode_is_refused_on_mpyc_in_process(inprocess: InProcessFederation) -> None:
    with pytest.raises(TemplateError, match="crypten backend only"):
        inprocess.run(TEMPLATE, {"features": "bmi", "k": 2, "mode": "full"})


def test_too_many_clusters_for_the_threshold_are_refused_jointly_in_process(
    inprocess: InProcessFederation,
) -> None:
    with pytest.raises(InProcessJobFailed, match=r"k x 11 = 33 patients") as refused:
        inprocess.run(TEMPLATE, {"features": "bmi,hba1c", "k": 3, "codes": "E75.22"})
    assert "hospital-" not in str(refused.value)


def test_pooled_mode_gives_scikit_learns_clustering_in_process(
    inprocess: InProcessFederation, data3: Path
) -> None:
    """Mode pooled opens each step's joint sizes and sums and divides in plaintext: the
    same clustering as scikit-learn's on the pooled rows, and its leakage says so."""
    rows, z, means, sds = pooled_rows(data3)
    init = np.round(rows[FEATURES].to_numpy(float)[[0, 50, 100, 150]], 6)
    params = dict(features=",".join(FEATURES), k=4, init=as_numbers(init), n_init=1, tol=0.0)
    result = inprocess.run(TEMPLATE, {**params, "mode": "pooled"}).result
    reference = KMeans(4, init=(init - means) / sds, n_init=1, tol=0, max_iter=100).fit(z)
    want = reference.cluster_centers_ * sds + means
    assert np.abs(np.asarray(result["centroids"]) / want - 1).max() <= RELATIVE["mpyc"]
    assert result["converged"] and result["iterations"] == reference.n_iter_
    assert result["sizes"] == np.bincount(reference.labels_, minlength=4).tolist()
    assert result["inertia"] == pytest.approx(reference.inertia_, rel=1e-6)
    assert result["mode"] == "pooled" and "joint size" in result["leakage"]


def test_pooled_mode_keeps_the_small_cluster_refusal_in_process(
    inprocess: InProcessFederation,
) -> None:
    """A centroid of fewer than the threshold of other hospitals' patients is refused
    before any size or sum of the step is opened, as in mode iterates."""
    with pytest.raises(InProcessJobFailed, match=r"fewer than 11 patients of the other hosp"):
        inprocess.run(
            TEMPLATE,
            {"features": "bmi,sbp", "k": 3, "init": "25,120,30,140,500,500", "mode": "pooled"},
        )


def test_pooled_mode_refuses_epsilon() -> None:
    from smpc_ehr.analyses.models import kmeans
    from smpc_ehr.study.template import load_template

    params = load_template(TEMPLATE).bind(
        {"features": "bmi", "k": "2", "mode": "pooled", "epsilon": "1", "bounds": "10,60"}
    )
    with pytest.raises(TemplateError, match="no differentially private variant"):
        kmeans.ANALYSIS.validate(params)
