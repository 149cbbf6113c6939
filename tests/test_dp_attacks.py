"""The differencing attack of issue 14, replayed with differential privacy (fast tier,
in-process federation, real noise from every party's exact sampler).

The attack, its targets and the bound epsilon allows are in
scripts/evaluation/differencing.py (shared with the evaluation report, which measures
the success rates per epsilon). The test asserts the one-sided lower Clopper-Pearson
bound of the measured rate at confidence 1 - ALPHA is below that bound (it fails
falsely with probability <= ALPHA if the mechanism keeps its promise; with N targets, a
perfect attack would fail it as soon as ALPHA^(1/N) > 0.810, i.e. N >= 66), and, as a
calibration check, that the rate agrees with what the stated noise gives (~0.525 at
epsilon = 1; two-sided binomial test at ALPHA). Target cells hold >= MIN_CELL true
patients, so none is suppressed. Exact runs are the control: the same attack succeeds
on every target.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest
from scipy import stats

from smpc_ehr.analyses.common.noise import DELTA
from smpc_ehr.policy.privacy import PrivacyPolicy
from smpc_ehr.privacy.accountant import epsilon_for, rho_for
from smpc_ehr.testing.federation import InProcessFederation, JobFailed

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

from evaluation.differencing import (
    PAIR_DAYS,
    WINDOW,
    Outcome,
    attack,
    expected_success,
    first_onsets,
    query,
    success_bound,
    targets,
)

ALPHA = 1e-6
"""False-failure rate of each statistical assertion."""
EPSILON = 1.0


def test_the_bounds_of_the_docstring() -> None:
    assert round(epsilon_for(2 * rho_for(1.0, DELTA), DELTA), 3) == 1.451
    assert round(success_bound(1.0), 3) == 0.810
    assert round(success_bound(1.0, queries=1), 3) == 0.731  # the e/(1+e), at delta


def test_the_differencing_attack_stays_within_the_bound_epsilon_allows(
    inprocess: InProcessFederation, data3: Path
) -> None:
    chosen = targets(first_onsets(data3))
    assert len(chosen) >= 100, len(chosen)  # >= 66 needed for a perfect attack to fail
    # Control: without noise the attack reads every target's bit.
    exact = [t for t in chosen if t.pair == 0]
    assert exact and attack(inprocess, exact, None) == Outcome(len(exact), len(exact), None)

    outcome = attack(inprocess, chosen, EPSILON)
    assert outcome.suppressed == 0, "a target's cell was suppressed"
    right, n = outcome.right, outcome.targets
    lower = stats.beta.ppf(ALPHA, right, n - right + 1) if right else 0.0
    assert lower <= success_bound(EPSILON), (right, n, lower)
    assert outcome.noise_sd is not None
    p0 = expected_success(outcome.noise_sd)
    assert stats.binomtest(right, n, p0).pvalue >= ALPHA, (right, n, p0)


def test_the_budget_refuses_further_pairs_also_after_a_restart(
    inprocess: InProcessFederation, tmp_path: Path
) -> None:
    """A per-analyst budget of epsilon 1.5 at delta 1e-6 holds two queries at epsilon 1
    (zCDP: 2 rho is epsilon 1.45 there), so one pair: the next pair's first query is
    refused for budget, and still after re-creating the federation on the same state
    folder (a restart of every party: the ledgers are their SQLite files)."""
    budget = PrivacyPolicy(epsilon_budget_per_analyst=1.5, delta=DELTA)
    hospitals = [dataclasses.replace(h, privacy=budget) for h in inprocess.hospitals]
    day = PAIR_DAYS[0]
    fed = InProcessFederation(hospitals, state=tmp_path)
    query(fed, day, EPSILON)
    query(fed, day + WINDOW, EPSILON)
    refused = "the privacy budget of hospital-1 does not allow"
    with pytest.raises(JobFailed, match=refused):
        query(fed, PAIR_DAYS[1], EPSILON)
    restarted = InProcessFederation(hospitals, state=tmp_path)
    with pytest.raises(JobFailed, match=refused):
        query(restarted, PAIR_DAYS[1], EPSILON)


def measured_rate(data: Path, pairs_repeats: int = 10) -> dict[str, float]:
    """The figure docs/security.md quotes: the attack repeated `pairs_repeats` times over
    the same targets (fresh noise each time), with a 95% Clopper-Pearson interval. Not a
    test: `python -c "from tests.test_dp_attacks import *; ..."`."""
    fed = InProcessFederation.from_folder(data, 11)
    chosen = targets(first_onsets(data))
    outcomes = [attack(fed, chosen, EPSILON) for _ in range(pairs_repeats)]
    right, n = sum(o.right for o in outcomes), sum(o.targets for o in outcomes)
    sd = outcomes[0].noise_sd
    assert sd is not None
    interval = stats.binomtest(right, n).proportion_ci(0.95, method="exact")
    return {
        "right": right,
        "targets": n,
        "rate": right / n,
        "low": float(interval.low),
        "high": float(interval.high),
        "bound": success_bound(EPSILON),
        "expected": expected_success(sd),
    }
