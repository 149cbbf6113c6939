"""Membership inference against a released logistic model: the loss-threshold attack
(Yeom, Giacomelli, Fredrikson, Jha 2018). The attacker holds a patient's features and
outcome and the released coefficients, computes the patient's loss (cross-entropy),
and says "member" (was in the training data) when the loss is at most the model's mean
training loss (Yeom et al. give the attacker that figure; it is generous to him). The
advantage TPR - FPR over members (the training patients) and non-members (patients
from the same distribution who were not) is 0 for guessing and at most
(e^eps - 1 + 2 delta) / (e^eps + 1) under (eps, delta)-DP for datasets differing in one
patient (Kairouz, Oh, Viswanath 2015, Thm 2.1, as in differencing.py)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from evaluation.confidence import bootstrap_interval


def losses(probability: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Each row's cross-entropy loss under the model's predicted probability."""
    p = np.clip(probability, 1e-12, 1 - 1e-12)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


@dataclass(frozen=True)
class Run:
    """One released model's losses on the members and on the non-members (None: the
    job was refused, no model released: the attacker can only guess, advantage 0)."""

    members: np.ndarray | None
    others: np.ndarray | None


def rates(run: Run, members: np.ndarray, others: np.ndarray) -> tuple[float, float]:
    """(TPR, FPR) of the threshold attack on the rows `members` and `others` (indices)."""
    if run.members is None or run.others is None:
        return 0.0, 0.0  # the same answer for everyone: TPR = FPR
    threshold = float(run.members.mean())
    return (
        float(np.mean(run.members[members] <= threshold)),
        float(np.mean(run.others[others] <= threshold)),
    )


def advantage(runs: Sequence[Run], members: np.ndarray, others: np.ndarray) -> float:
    """TPR - FPR averaged over the runs (each run a fresh release of the model)."""
    pairs = [rates(r, members, others) for r in runs]
    return float(np.mean([tpr - fpr for tpr, fpr in pairs]))


def measured(
    runs: Sequence[Run], n_members: int, n_others: int, rng: np.random.Generator
) -> tuple[float, float, float]:
    """The advantage and its 95% percentile bootstrap interval over patients, members
    and non-members resampled separately (the same resample for every run)."""

    def resampled() -> float:
        members = rng.integers(0, n_members, n_members)
        others = rng.integers(0, n_others, n_others)
        return advantage(runs, members, others)

    value = advantage(runs, np.arange(n_members), np.arange(n_others))
    low, high = bootstrap_interval(resampled)
    return value, low, high


def dp_bound(epsilon: float, delta: float) -> float:
    """The most TPR - FPR can be for an (epsilon, delta)-DP release."""
    return (math.exp(epsilon) - 1 + 2 * delta) / (math.exp(epsilon) + 1)
