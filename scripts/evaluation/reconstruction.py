"""Reconstruction of individual records from released stratified counts (the attack of
Dinur and Nissim, as the US Census Bureau ran it on its 2010 tables), by integer
programming.

A record is a patient of the cohort (at least one of k code prefixes): its sex, age
band and which of the k prefixes it has (a non-zero 0/1 vector). The analyst asks the
count template, for every non-empty subset S of the prefixes, the count by sex and age
band of the patients with a code in S (2^k - 1 allowed queries): each released cell is
the number of the cell's records whose vector meets S; a suppressed cell says only that
the number is below the threshold. Per cell (sex x age band) the unknowns are the
numbers of records of each vector; exact releases are equations (2^k - 1 independent
ones for 2^k - 1 unknowns: a cell with no suppression is determined), suppressed ones
inequalities, noisy ones targets whose total absolute deviation the solver minimises.
`scipy.optimize.milp` (HiGHS) finds the integer solution; the share of the true
records it recovers exactly (the multiset overlap: each reconstructed record matched
with a distinct true record of the same sex, band and vector) is the measure.

Chance level: records guessed from the cohort's exact marginals (its sex x age band
distribution and each prefix's prevalence, prefixes independent), rounded to the
cohort's size by largest remainder, scored the same way.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import LinearConstraint, milp

from evaluation.truth import BANDS, SEXES, ages, pooled

Cell = tuple[str, str]
Vector = tuple[int, ...]
Subset = tuple[int, ...]
Table = dict[Cell, Counter[Vector]]
"""Records of a cohort: per cell, how many records have each vector."""
Releases = Mapping[Subset, Mapping[Cell, int | None]]
"""Per subset of the prefixes, per cell, the released count (None: suppressed)."""

CELLS: tuple[Cell, ...] = tuple(itertools.product(SEXES, BANDS))


def vectors(k: int) -> list[Vector]:
    """The non-zero 0/1 vectors over k prefixes."""
    return [v for v in itertools.product((0, 1), repeat=k) if any(v)]


def subsets(k: int) -> list[Subset]:
    """The non-empty subsets of the k prefixes (as index tuples): the allowed queries."""
    return [s for r in range(1, k + 1) for s in itertools.combinations(range(k), r)]


def meets(vector: Vector, subset: Subset) -> bool:
    return any(vector[i] for i in subset)


def records(data: Path, prefixes: Sequence[str], as_of: str = "2026-01-01") -> Table:
    """The cohort's true records (pandas on the pooled files, independent of smpc_ehr)."""
    patients, conditions = pooled(data)
    has = {
        p: set(
            zip(
                *(
                    conditions[conditions["code"].str.startswith(p)][c]
                    for c in ("site", "patient_id")
                ),
                strict=True,
            )
        )
        for p in prefixes
    }
    people = patients.assign(age=ages(patients["birth_date"], as_of))
    table: Table = {cell: Counter() for cell in CELLS}
    for site, pid, sex, age in zip(
        people["site"], people["patient_id"], people["sex"], people["age"], strict=True
    ):
        vector = tuple(int((site, pid) in has[p]) for p in prefixes)
        if age >= 0 and any(vector):
            table[(sex, BANDS[min(age // 10, 9)])][vector] += 1
    return table


def true_releases(table: Table, k: int, threshold: int) -> dict[Subset, dict[Cell, int | None]]:
    """What the count template releases exactly for `table` (for tests and checks)."""
    out: dict[Subset, dict[Cell, int | None]] = {}
    for s in subsets(k):
        out[s] = {}
        for cell in CELLS:
            n = sum(c for v, c in table[cell].items() if meets(v, s))
            out[s][cell] = n if n >= threshold else None
    return out


PRIOR_WEIGHT = 0.5
"""The cost of moving one record away from the prior guess; a unit of deviation from a
noisy release costs 1 / max(1, noise sd): the noisier the releases, the more the
attacker keeps to the prior."""


def reconstruct(
    releases: Releases, k: int, threshold: int, noise_sd: float | None, prior: Table | None = None
) -> Table:
    """The records an integer program finds consistent with the releases, per cell:
    exact releases (`noise_sd` None) as equations and suppressed cells as
    `< threshold`; noisy ones as targets (total absolute deviation minimised, suppressed
    cells' excess over threshold - 1 too). Among the solutions, the one nearest `prior` (the
    attacker's guess before the releases, e.g. `marginal_guess`; none: the solver's
    first)."""
    vs, ss = vectors(k), subsets(k)
    a = np.array([[1.0 if meets(v, s) else 0.0 for v in vs] for s in ss])
    out: Table = {}
    for cell in CELLS:
        guess = (prior or {}).get(cell, Counter())
        g = np.array([float(guess[v]) for v in vs])
        out[cell] = _solve_cell(a, [releases[s][cell] for s in ss], vs, threshold, noise_sd, g)
    return out


def _solve_cell(
    a: np.ndarray,
    released: list[int | None],
    vs: list[Vector],
    threshold: int,
    noise_sd: float | None,
    prior: np.ndarray,
) -> Counter[Vector]:
    """Variables: the counts x (n), their distances from the prior d (n), and with
    noise one slack e per query (m): |x - prior| <= d, and per query either
    low <= a x <= high (exact) or |a x - r| <= e, a x - (threshold - 1) <= e (noisy)."""
    m, n = a.shape
    noisy = noise_sd is not None
    slacks = m if noisy else 0
    eye_n, eye_m = np.eye(n), np.eye(m)
    rows: list[np.ndarray] = []
    low: list[float] = []
    high: list[float] = []

    def add(row: np.ndarray, lo: float, hi: float) -> None:
        rows.append(row)
        low.append(lo)
        high.append(hi)

    for j in range(n):  # |x_j - prior_j| <= d_j
        add(np.concatenate([eye_n[j], -eye_n[j], np.zeros(slacks)]), -np.inf, prior[j])
        add(np.concatenate([eye_n[j], eye_n[j], np.zeros(slacks)]), prior[j], np.inf)
    for i, r in enumerate(released):
        if not noisy:
            lo, hi = (0.0, threshold - 1.0) if r is None else (float(r), float(r))
            add(np.concatenate([a[i], np.zeros(n)]), lo, hi)
            continue
        target = threshold - 1.0 if r is None else float(r)
        add(np.concatenate([a[i], np.zeros(n), -eye_m[i]]), -np.inf, target)
        if r is not None:
            add(np.concatenate([a[i], np.zeros(n), eye_m[i]]), target, np.inf)
    release_weight = 1.0 / max(1.0, noise_sd or 1.0)
    cost = np.concatenate([np.zeros(n), np.full(n, PRIOR_WEIGHT), np.full(slacks, release_weight)])
    integrality = np.concatenate([np.ones(n), np.zeros(n + slacks)])
    result = milp(
        cost,
        integrality=integrality,
        bounds=(0, np.inf),
        constraints=LinearConstraint(np.array(rows), low, high),
    )
    if not result.success:
        raise RuntimeError(f"the integer program found no solution: {result.message}")
    x = np.round(result.x[:n]).astype(int)
    return Counter({v: int(c) for v, c in zip(vs, x, strict=True) if c > 0})


def determined(releases: Releases, k: int) -> int:
    """Cells none of whose releases is suppressed (their records follow exactly)."""
    return sum(all(releases[s][cell] is not None for s in subsets(k)) for cell in CELLS)


def recovered(truth: Table, guess: Table) -> int:
    """True records matched by a distinct reconstructed record of the same cell and vector."""
    return sum(
        min(n, guess.get(cell, Counter())[v]) for cell in truth for v, n in truth[cell].items()
    )


def size(table: Table) -> int:
    return sum(sum(c.values()) for c in table.values())


def marginal_guess(truth: Table, k: int) -> Table:
    """The chance level's guess: the cohort's exact marginals (cells; each prefix's
    prevalence), prefixes independent given at least one, rounded by largest remainder."""
    total = size(truth)
    if total == 0:
        return {cell: Counter() for cell in CELLS}
    cell_share = np.array([sum(truth[c].values()) / total for c in CELLS])
    prevalence = np.array(
        [sum(n for c in CELLS for v, n in truth[c].items() if v[i]) / total for i in range(k)]
    )
    vs = vectors(k)
    weight = np.array([np.prod(np.where(np.array(v) == 1, prevalence, 1 - prevalence)) for v in vs])
    weight = weight / weight.sum()
    expected = np.outer(cell_share, weight) * total
    counts = np.floor(expected).astype(int)
    rest = total - int(counts.sum())
    order = np.argsort(-(expected - counts), axis=None)[:rest]
    counts.flat[order] += 1
    return {
        cell: Counter({v: int(counts[i, j]) for j, v in enumerate(vs) if counts[i, j]})
        for i, cell in enumerate(CELLS)
    }


def query_all(
    fed: Any, template: Any, prefixes: Sequence[str], epsilon: float | None
) -> tuple[dict[Subset, dict[Cell, int | None]], float | None]:
    """Every allowed query of the module docstring on an InProcessFederation, and the
    noise sd the results state (None: exact)."""
    out: dict[Subset, dict[Cell, int | None]] = {}
    sd = None
    for s in subsets(len(prefixes)):
        params = {"codes": ",".join(prefixes[i] for i in s), "by": "sex,age_band"}
        if epsilon is not None:
            params["epsilon"] = repr(epsilon)
        result = fed.run(template, params).result
        out[s] = {(c["sex"], c["age_band"]): c["count"] for c in result["cells"]}
        sd = float(result["dp"]["noise_sd"]) if "dp" in result else None
    return out, sd
