"""The attack and solver pieces of the evaluation report's privacy sections
(scripts/evaluation/), on tiny hand-made inputs whose answer is known: the integer
program recovers a fully determined table, stays within suppressed cells and weighs
noisy releases; the membership advantage of a model that memorised is 1 and of one
that did not is near 0; the intervals and bounds agree with closed forms."""

from __future__ import annotations

import math
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

from evaluation import membership as mem
from evaluation import reconstruction as rec
from evaluation.confidence import clopper_pearson, mean_interval
from evaluation.differencing import Target
from evaluation.reidentification import balanced

F40, M70 = ("F", "40-49"), ("M", "70-79")


def table(cells: dict[rec.Cell, dict[rec.Vector, int]]) -> rec.Table:
    """A cohort over two prefixes: every cell empty but the given ones."""
    out: rec.Table = {cell: Counter() for cell in rec.CELLS}
    for cell, counts in cells.items():
        out[cell] = Counter(counts)
    return out


TRUTH = table({F40: {(1, 0): 7, (0, 1): 2, (1, 1): 4}, M70: {(1, 0): 30, (0, 1): 25, (1, 1): 12}})


def test_the_allowed_queries_are_every_non_empty_subset() -> None:
    assert rec.subsets(2) == [(0,), (1,), (0, 1)]
    assert rec.vectors(2) == [(0, 1), (1, 0), (1, 1)]
    releases = rec.true_releases(TRUTH, 2, 1)
    assert releases[(0,)][F40] == 11 and releases[(1,)][F40] == 6 and releases[(0, 1)][F40] == 13
    assert releases[(0, 1)][("U", "0-9")] is None  # 0 is below any threshold >= 1


def test_the_integer_program_recovers_a_fully_determined_table() -> None:
    releases = rec.true_releases(TRUTH, 2, 1)  # only the empty cells' zeros suppressed
    assert rec.determined(releases, 2) == 2
    got = rec.reconstruct(releases, 2, 1, None)
    assert got == TRUTH
    assert rec.recovered(TRUTH, got) == rec.size(TRUTH) == 80


def test_suppressed_cells_are_only_bounded_and_the_prior_fills_them() -> None:
    releases = rec.true_releases(TRUTH, 2, 11)  # F40: the counts 11 and 13 stay, 6 goes
    assert releases[(1,)][F40] is None and releases[(0, 1)][F40] == 13
    wrong_prior = table({F40: {(0, 1): 13}})
    got = rec.reconstruct(releases, 2, 11, None, wrong_prior)
    # every solution meets the releases: 13 in all, 11 with prefix 0, so 2 without it
    assert sum(got[F40].values()) == 13 and got[F40][(0, 1)] == 2
    assert got[M70] == TRUTH[M70]  # determined
    assert rec.true_releases(got, 2, 11) == releases


def test_noisy_releases_close_to_the_truth_give_it_back() -> None:
    exact = rec.true_releases(TRUTH, 2, 1)
    noisy = {
        s: {c: (None if v is None else v + (1 if s == (1,) else 0)) for c, v in cells.items()}
        for s, cells in exact.items()
    }  # one count off by one, in every cell
    got = rec.reconstruct(noisy, 2, 1, 1.0)
    assert rec.recovered(TRUTH, got) >= rec.size(TRUTH) - 2


def test_the_chance_guess_keeps_the_cohort_size_and_scores_like_any_guess() -> None:
    guess = rec.marginal_guess(TRUTH, 2)
    assert rec.size(guess) == rec.size(TRUTH)
    one_prefix = table({M70: {(1,): 9}})
    one_prefix = {cell: Counter({v[:1]: n for v, n in c.items()}) for cell, c in one_prefix.items()}
    assert rec.marginal_guess(one_prefix, 1) == one_prefix  # nothing to guess
    partial = table({F40: {(1, 0): 3, (0, 1): 9}})
    assert rec.recovered(TRUTH, partial) == 3 + 2


def test_a_model_that_memorised_gives_full_membership_advantage() -> None:
    y = np.array([0, 1] * 50, dtype=float)
    memorised = mem.losses(np.where(y == 1, 0.999, 0.001), y)  # sure and right on members
    unsure = mem.losses(np.full(100, 0.5), y)  # chance on everyone else
    run = mem.Run(memorised, unsure)
    value, low, high = mem.measured([run], 100, 100, np.random.default_rng(1))
    assert value == 1.0 and low == 1.0
    # no memorising: members and non-members alike, the advantage is near 0
    rng = np.random.default_rng(2)
    same = mem.Run(rng.exponential(size=400), rng.exponential(size=400))
    value, low, high = mem.measured([same], 400, 400, rng)
    assert low < 0 < high and abs(value) < 0.15
    # a refused release gives the attacker nothing
    assert mem.advantage([mem.Run(None, None)], np.arange(3), np.arange(3)) == 0.0


def test_the_membership_bound_is_kairouz_oh_viswanath() -> None:
    assert mem.dp_bound(1.0, 0.0) == pytest.approx((math.e - 1) / (math.e + 1))
    assert mem.dp_bound(1e-9, 0.0) == pytest.approx(0.0, abs=1e-8)


def test_intervals_agree_with_closed_forms() -> None:
    assert clopper_pearson(0, 10)[0] == 0.0
    assert clopper_pearson(10, 10)[1] == 1.0
    assert clopper_pearson(0, 10)[1] == pytest.approx(1 - 0.025 ** (1 / 10))
    mean, low, high = mean_interval([1.0, 2.0, 3.0])
    half = stats.t.ppf(0.975, 2) * 1.0 / math.sqrt(3)
    assert (mean, low, high) == pytest.approx((2.0, 2.0 - half, 2.0 + half))


def test_differencing_targets_are_balanced_over_the_first_pairs() -> None:
    chosen = [
        Target(0, F40, 1, 0),
        Target(0, M70, 1, 2),
        Target(1, F40, 0, 0),
        Target(2, M70, 0, 0),
    ]
    got = balanced(chosen, 1)  # pair 0 has no bit-0 target: pair 1 is added
    assert sorted((t.pair, t.bit) for t in got) == [(0, 1), (1, 0)]
