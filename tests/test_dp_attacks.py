"""The differencing attack of issue 14, replayed with differential privacy (fast tier,
in-process federation, real noise from every party's exact sampler).

The attack. Two allowed counts whose cohorts differ only by patients the attacker
knows everything about, except one target: their difference minus the others' known
contribution is the target's secret bit (has the diagnosis in the window or not). The
issue's pair was `as_of` one day apart; the count template now takes `as_of` to the
month (tests/test_date_resolution.py), so the pair here is `onset_to` 15 days apart
(day resolution): q0 counts the patients with a listed code recorded by day D, q1 by
D + 15, both stratified by sex and age band. In a cell of the table, the targets are:
a patient whose first such diagnosis falls in (D, D + 15] (bit 1; the cell's other
such patients are known to the attacker) or, where the cell has none, a patient of
the cell outside that set (bit 0). The attacker guesses bit 1 when
(q1 - q0) - (known others) > 1/2, the likelihood-ratio test for Gaussian noise.
One target per cell and pair, in cells far above the threshold (>= MIN_CELL true
patients: suppression of a noisy cell there has probability < 2e-12), so the
targets' outcomes are independent (each cell's noise is fresh); as many targets of
each bit, so the success rate is the balanced accuracy (TPR + TNR) / 2.

The bound. Each query spends rho = rho_for(epsilon, delta) (zCDP, delta = 1e-6), and
the pair composes: 2 rho (Bun-Steinke, Lemma 2.3), which is (eps2, delta)-DP with
eps2 = epsilon_for(2 rho, delta) (1.451 at epsilon = 1 per query). For two datasets
differing in one patient's record, (eps2, delta)-DP gives every test
FPR + e^eps2 FNR >= 1 - delta and FNR + e^eps2 FPR >= 1 - delta (Kairouz, Oh,
Viswanath 2015, Thm 2.1); adding them, FPR + FNR >= 2 (1 - delta) / (1 + e^eps2), so
the balanced accuracy is at most

    (e^eps2 + delta) / (1 + e^eps2)   (0.810 here; one query alone: 0.731 at epsilon = 1).

The test asserts the one-sided lower Clopper-Pearson bound of the measured rate at
confidence 1 - ALPHA is below that bound (it fails falsely with probability <= ALPHA if
the mechanism keeps its promise; with N targets, a perfect attack would fail it as soon
as ALPHA^(1/N) > 0.810, i.e. N >= 66), and, as a calibration check, that the rate
agrees with what the stated noise gives: the difference of two released cells is an
integer D with sd sqrt(2) * noise_sd, the guess is right iff D <= 0 (bit 0) or D >= 0
(bit 1), so the rate is 1/2 + P(D = 0)/2 ~ 0.525 at epsilon = 1 (P(D = 0) from the
normal approximation with continuity correction; two-sided binomial test at ALPHA).
Exact runs are the control: the same attack succeeds on every target.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from scipy import stats

from smpc_ehr.analyses.common.noise import DELTA
from smpc_ehr.policy.privacy import PrivacyPolicy
from smpc_ehr.privacy.accountant import epsilon_for, rho_for
from smpc_ehr.testing.federation import InProcessFederation, JobFailed
from tests._truth import BANDS, ages, pooled
from tests.federations import COUNT_TEMPLATE

ALPHA = 1e-6
"""False-failure rate of each statistical assertion."""
EPSILON = 1.0
CODES = ("I10", "E11", "E66", "Z87", "E78", "N18", "F32", "K21", "I25", "M54", "J45")
WINDOW = dt.timedelta(days=15)
MIN_CELL = 50
"""True patients in a cell (in q0) for it to hold a target: 7 noise sd above 11 at
epsilon = 1, so a noisy target cell is suppressed with probability < 2e-12."""
PAIR_DAYS = tuple(dt.date(2002 + 5 * i // 2, 1 + (5 * i) % 12, 10) for i in range(9))
"""The D of each pair: spread over the synthetic onsets (2001-2025)."""

Cell = tuple[str, str]


def first_onsets(data: Path) -> pd.DataFrame:
    """Per patient born by as_of (2026-01-01): sex, age band and the first known onset of
    a listed code (pandas on the pooled files, independent of smpc_ehr)."""
    patients, conditions = pooled(data)
    hits = conditions[conditions["code"].str.startswith(CODES)]
    when = pd.to_datetime(hits["onset_date"], errors="coerce")
    first = hits.assign(first=when).dropna(subset=["first"])
    first = first.groupby(["site", "patient_id"])["first"].min().reset_index()
    people = patients.merge(first, on=["site", "patient_id"])
    people = people.assign(age=ages(people["birth_date"], "2026-01-01"))
    people = people[people["age"] >= 0]
    return people.assign(band=[BANDS[min(a // 10, 9)] for a in people["age"]])


def cell_counts(people: pd.DataFrame, by_day: dt.date) -> dict[Cell, int]:
    """True q(by_day): patients with a listed code recorded on or before by_day, per cell."""
    seen = people[people["first"] <= pd.Timestamp(by_day)]
    return {key: int(n) for key, n in seen.groupby(["sex", "band"]).size().items()}


@dataclasses.dataclass(frozen=True)
class Target:
    """One attacked patient: the pair, the cell, the secret bit and what the attacker
    knows (the other patients' contribution to the cell's difference)."""

    pair: int
    cell: Cell
    bit: int
    known_others: int


def targets(people: pd.DataFrame) -> list[Target]:
    """One target per eligible (pair, cell), as many of each bit, chosen from the
    plaintext only (before any query)."""
    ones: list[Target] = []
    zeros: list[Target] = []
    for pair, day in enumerate(PAIR_DAYS):
        before, after = cell_counts(people, day), cell_counts(people, day + WINDOW)
        for cell, n in sorted(before.items()):
            if n < MIN_CELL:
                continue
            diff = after.get(cell, 0) - n
            if diff > 0:
                ones.append(Target(pair, cell, 1, diff - 1))
            else:
                zeros.append(Target(pair, cell, 0, 0))
    k = min(len(ones), len(zeros))
    return ones[:k] + zeros[:k]


def query(fed: InProcessFederation, day: dt.date, epsilon: float | None) -> dict[str, Any]:
    """The stratified count of the patients with a listed code recorded by `day`."""
    params = {"codes": ",".join(CODES), "by": "sex,age_band", "onset_to": day.isoformat()}
    if epsilon is not None:
        params["epsilon"] = str(epsilon)
    result: dict[str, Any] = fed.run(COUNT_TEMPLATE, params).result
    return result


def cells(result: dict[str, Any]) -> dict[Cell, int | None]:
    return {(c["sex"], c["age_band"]): c["count"] for c in result["cells"]}


@dataclasses.dataclass(frozen=True)
class Outcome:
    right: int
    targets: int
    noise_sd: float | None
    """The released noise's sd per cell, as the results state it (None: exact runs)."""


def attack(fed: InProcessFederation, chosen: list[Target], epsilon: float | None) -> Outcome:
    """The attacker's guesses: each pair queried once (both counts fresh)."""
    right, sds = 0, set()
    for pair in sorted({t.pair for t in chosen}):
        day = PAIR_DAYS[pair]
        before, after = query(fed, day, epsilon), query(fed, day + WINDOW, epsilon)
        sds |= {r["dp"]["noise_sd"] for r in (before, after) if "dp" in r}
        q0, q1 = cells(before), cells(after)
        for target in (t for t in chosen if t.pair == pair):
            low, high = q0[target.cell], q1[target.cell]
            assert low is not None and high is not None, "a target's cell was suppressed"
            guess = int(high - low - target.known_others > 0.5)
            right += guess == target.bit
    assert len(sds) <= 1, sds
    return Outcome(right, len(chosen), sds.pop() if sds else None)


def success_bound(epsilon: float, queries: int = 2) -> float:
    """The most a test's balanced accuracy can be for `queries` composed releases at
    `epsilon` each (module docstring)."""
    eps = epsilon_for(queries * rho_for(epsilon, DELTA), DELTA)
    return (math.exp(eps) + DELTA) / (1 + math.exp(eps))


def expected_success(noise_sd: float) -> float:
    """1/2 + P(D = 0)/2 for D the difference of two released values (normal
    approximation of the sum of discrete Gaussians, with continuity correction)."""
    sd = math.sqrt(2) * noise_sd
    return 0.5 + (stats.norm.cdf(0.5 / sd) - stats.norm.cdf(-0.5 / sd)) / 2


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
