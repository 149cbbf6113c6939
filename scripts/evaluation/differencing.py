"""The differencing attack of issue 14 against the count template, shared by its test
(tests/test_dp_attacks.py: the bound differential privacy allows) and the evaluation
report (reidentification.py: success rates exact, per epsilon and within a budget).

The attack. Two allowed counts whose cohorts differ only by patients the attacker
knows everything about, except one target: their difference minus the others' known
contribution is the target's secret bit (has the diagnosis in the window or not). The
count template takes `as_of` to the month (tests/test_date_resolution.py), so the pair
is `onset_to` 15 days apart (day resolution): q0 counts the patients with a listed code
recorded by day D, q1 by D + 15, both stratified by sex and age band. In a cell of the
table, the targets are: a patient whose first such diagnosis falls in (D, D + 15]
(bit 1; the cell's other such patients are known to the attacker) or, where the cell
has none, a patient of the cell outside that set (bit 0). The attacker guesses bit 1
when (q1 - q0) - (known others) > 1/2, the likelihood-ratio test for Gaussian noise,
and bit 0 when either cell is suppressed (no information). One target per cell and
pair, in cells of at least `min_cell` true patients, so the targets' outcomes are
independent (each cell's noise is fresh); as many targets of each bit, so the success
rate is the balanced accuracy (TPR + TNR) / 2 and chance is 1/2.

The bound. Each query spends rho = rho_for(epsilon, delta) (zCDP, delta = 1e-6), and
the pair composes: 2 rho (Bun-Steinke, Lemma 2.3), which is (eps2, delta)-DP with
eps2 = epsilon_for(2 rho, delta) (1.451 at epsilon = 1 per query). For two datasets
differing in one patient's record, (eps2, delta)-DP gives every test
FPR + e^eps2 FNR >= 1 - delta and FNR + e^eps2 FPR >= 1 - delta (Kairouz, Oh,
Viswanath 2015, Thm 2.1); adding them, FPR + FNR >= 2 (1 - delta) / (1 + e^eps2), so
the balanced accuracy is at most

    (e^eps2 + delta) / (1 + e^eps2)   (0.810 here; one query alone: 0.731 at epsilon = 1).

What the stated noise predicts: the difference of two released cells is an integer D
with sd sqrt(2) * noise_sd, the guess is right iff D <= 0 (bit 0) or D >= 0 (bit 1), so
the rate is 1/2 + P(D = 0)/2 (normal approximation with continuity correction).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from pathlib import Path
from typing import Any

import pandas as pd
from scipy import stats

from evaluation.truth import BANDS, ROOT, ages, pooled
from smpc_ehr.analyses.common.noise import DELTA
from smpc_ehr.privacy.accountant import epsilon_for, rho_for

COUNT_TEMPLATE = ROOT / "protocols" / "rare_disease_count.toml"
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


def targets(people: pd.DataFrame, min_cell: int = MIN_CELL) -> list[Target]:
    """One target per eligible (pair, cell), as many of each bit, chosen from the
    plaintext only (before any query)."""
    ones: list[Target] = []
    zeros: list[Target] = []
    for pair, day in enumerate(PAIR_DAYS):
        before, after = cell_counts(people, day), cell_counts(people, day + WINDOW)
        for cell, n in sorted(before.items()):
            if n < min_cell:
                continue
            diff = after.get(cell, 0) - n
            if diff > 0:
                ones.append(Target(pair, cell, 1, diff - 1))
            else:
                zeros.append(Target(pair, cell, 0, 0))
    k = min(len(ones), len(zeros))
    return ones[:k] + zeros[:k]


def query(fed: Any, day: dt.date, epsilon: float | None) -> dict[str, Any]:
    """The stratified count of the patients with a listed code recorded by `day`, on an
    InProcessFederation."""
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
    suppressed: int = 0
    """Targets whose cell was suppressed in q0 or q1 (guessed 0)."""


def attack(fed: Any, chosen: list[Target], epsilon: float | None) -> Outcome:
    """The attacker's guesses: each pair queried once (both counts fresh)."""
    return attack_pairs(fed, chosen, epsilon)[0]


def attack_pairs(
    fed: Any, chosen: list[Target], epsilon: float | None, refused: type[Exception] | None = None
) -> tuple[Outcome, int]:
    """`attack`, pair after pair, stopping at the first query raising `refused` (the
    ledger's refusal): the outcome over the targets of the pairs answered in full, and
    how many pairs that was."""
    right, suppressed, attacked, answered, sds = 0, 0, 0, 0, set()
    for pair in sorted({t.pair for t in chosen}):
        day = PAIR_DAYS[pair]
        try:
            before, after = query(fed, day, epsilon), query(fed, day + WINDOW, epsilon)
        except Exception as exc:
            if refused is not None and isinstance(exc, refused):
                break
            raise
        answered += 1
        sds |= {r["dp"]["noise_sd"] for r in (before, after) if "dp" in r}
        q0, q1 = cells(before), cells(after)
        for target in (t for t in chosen if t.pair == pair):
            low, high = q0[target.cell], q1[target.cell]
            attacked += 1
            if low is None or high is None:
                suppressed += 1
                right += target.bit == 0
                continue
            guess = int(high - low - target.known_others > 0.5)
            right += guess == target.bit
    assert len(sds) <= 1, sds
    return Outcome(right, attacked, sds.pop() if sds else None, suppressed), answered


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
