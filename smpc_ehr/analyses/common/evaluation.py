"""Secure evaluation of a binary classifier on the union of the parties' test rows:
accuracy, AUC, the confusion matrix at 0.5 and calibration by tenths of the score.

Each party scores its own test rows in plaintext (the model is known to it) and
reduces them to counts: the confusion matrix, histograms of the scores of positives
and of negatives in AUC_BINS bins, and per tenth of the score the number of rows,
events and the sum of the scores. Inside MPC the counts are summed; every released
count must reach the small-cell threshold (else it is suppressed); the AUC is computed
inside MPC from the two joint histograms,

    AUC = sum_b n_b (P_(>b) + p_b / 2) / (P N),

with p_b, n_b the positives and negatives in bin b, P_(>b) the positives above it and
P, N the totals (a pair in the same bin counts one half: the stated resolution), and
released only if P and N both reach the threshold. Only the aggregates are opened:
no histogram, no single score. A tenth's mean predicted probability is released only
when its rows reach the threshold (the score sum is multiplied by that bit inside MPC),
its observed rate only when its events do too.

Complementary suppression, decided inside MPC: the confusion matrix, the tenths'
rows and the tenths' events are three partitions of totals that the other partitions
give away (the rows add up to the confusion matrix's total, the events to fn + tp), so
the confusion matrix is released whole or not at all (all four cells reach the
threshold), and the tenths are taken in halves (tenths 0-4 are the scores below the
cutoff: their rows add up to tn + fn, their events to fn; tenths 5-9 to fp + tp and
tp): if a tenth's rows (events) are hidden, the smallest released tenth's rows (events)
of the same half are hidden too (`cells.complementary`), so the hidden cells of a
half hold at least the threshold together and none is a total minus released ones.
A tenth's events are shown only if its non-events (rows minus events) reach the
threshold as well, since the rows and the observed rate would give them.

Leakage (to the coordinator and the analyst only; the parties learn nothing of it):
the counts released by those rules, the AUC when P and N reach the threshold, and the
tenths' means where their rows are released; which cells are hidden, not which of
them is below the threshold.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from smpc_ehr.analyses.base import NamedSecrets, Output
from smpc_ehr.analyses.common.cells import complementary, exact_int
from smpc_ehr.analyses.common.moments import party_arrays
from smpc_ehr.securemath.boolean import all_of
from smpc_ehr.securemath.division import fractions_of_total
from smpc_ehr.securemath.ops import Secret, SecureOps

AUC_BINS = 100
"""Scores are binned by 0.01 for the AUC: pairs within one bin count one half."""
CALIBRATION_BINS = 10
CUTOFF = 0.5
HALF = int(CALIBRATION_BINS * CUTOFF)
"""Tenths below HALF are exactly the scores below the cutoff (predicted negative)."""
_COUNTS = 4 + 2 * CALIBRATION_BINS
"""Released counts: tn, fp, fn, tp, then per tenth of the score rows and events."""


def local_counts(scores: np.ndarray, y: np.ndarray) -> np.ndarray:
    """This party's evaluation counts (see the module docstring), as one float vector:
    [tn, fp, fn, tp, rows_1..10, events_1..10, score sums_1..10, positives and
    negatives per AUC bin]."""
    predicted = scores >= CUTOFF
    positive = y == 1
    confusion = [
        np.sum(~predicted & ~positive),
        np.sum(predicted & ~positive),
        np.sum(~predicted & positive),
        np.sum(predicted & positive),
    ]
    tenth = np.minimum((scores * CALIBRATION_BINS).astype(int), CALIBRATION_BINS - 1)
    rows = np.bincount(tenth, minlength=CALIBRATION_BINS)
    events = np.bincount(tenth, weights=positive, minlength=CALIBRATION_BINS)
    sums = np.bincount(tenth, weights=scores, minlength=CALIBRATION_BINS)
    bins = np.minimum((scores * AUC_BINS).astype(int), AUC_BINS - 1)
    pos = np.bincount(bins[positive], minlength=AUC_BINS)
    neg = np.bincount(bins[~positive], minlength=AUC_BINS)
    return np.concatenate([confusion, rows, events, sums, pos, neg]).astype(float)


def outputs() -> tuple[Output, ...]:
    """What `evaluation_outputs` opens, by name: the counts' release bits and the
    masked counts (tn, fp, fn, tp, then per tenth rows and events), the masked score
    sums per tenth, the bit [P >= t and N >= t] and the masked AUC."""
    return (
        Output("evaluation_released", (_COUNTS,)),
        Output("evaluation_counts", (_COUNTS,)),
        Output("evaluation_score_sums", (CALIBRATION_BINS,)),
        Output("evaluation_auc_released", (1,)),
        Output("evaluation_auc", (1,)),
    )


def evaluation_outputs(ops: SecureOps, local: np.ndarray, threshold: int) -> NamedSecrets:
    """The secrets the coordinator may open (`outputs`), from every party's
    `local_counts`."""
    return joint_outputs(ops, ops.sum(party_arrays(ops, local), axis=0), threshold)


def joint_outputs(ops: SecureOps, joint: Secret, threshold: int) -> NamedSecrets:
    """The secrets the coordinator may open (`outputs`), from the joint counts (secret,
    in `local_counts`' layout)."""
    counts = joint[:_COUNTS]
    sums = joint[_COUNTS : _COUNTS + CALIBRATION_BINS]
    start = _COUNTS + CALIBRATION_BINS
    positives = joint[start : start + AUC_BINS]
    negatives = joint[start + AUC_BINS : start + 2 * AUC_BINS]
    totals = [ops.sum(ops.reshape(h, (AUC_BINS, 1)), axis=0) for h in (positives, negatives)]
    tenths = CALIBRATION_BINS
    non_events = ops.sub(counts[4 : 4 + tenths], counts[4 + tenths :])  # per tenth
    compared = [*(counts[i : i + 1] for i in range(_COUNTS)), *totals]
    flags = ops.reshape(ops.stack(compared), (_COUNTS + 2,))
    # One batch: the counts, P and N, and each tenth's non-events (its events and rows
    # together would give them: an observed rate is shown only if both reach t).
    flags = ops.ge_public(ops.concatenate([flags, non_events]), threshold)
    both = ops.mul(flags[_COUNTS : _COUNTS + 1], flags[_COUNTS + 1 : _COUNTS + 2])
    events_reach = ops.mul(flags[4 + tenths : _COUNTS], flags[_COUNTS + 2 :])
    reach = ops.concatenate([flags[: 4 + tenths], events_reach])
    count_bits = _complementary_bits(ops, reach, counts)
    rows_bits = count_bits[4 : 4 + CALIBRATION_BINS]
    shares = fractions_of_total(ops, ops.stack([positives, negatives], axis=1))  # one division
    pos, neg = shares[:, 0], shares[:, 1]  # p_b / P and n_b / N
    above = np.triu(np.ones((AUC_BINS, AUC_BINS)), k=1)  # [b, b'] = 1 for b' > b
    positives_above = ops.sum(ops.mul_public(ops.stack([pos] * AUC_BINS), above), axis=1)
    half = ops.mul_public(pos, 0.5)
    pairs = ops.mul(neg, ops.add(positives_above, half))
    auc = ops.sum(ops.reshape(pairs, (AUC_BINS, 1)), axis=0)  # (1,): not an MPyC scalar
    return {
        "evaluation_released": count_bits,
        "evaluation_counts": ops.mul(count_bits, counts),
        "evaluation_score_sums": ops.mul(rows_bits, sums),
        "evaluation_auc_released": both,
        "evaluation_auc": ops.mul(both, auc),
    }


def _complementary_bits(ops: SecureOps, reach: Secret, counts: Secret) -> Secret:
    """The release bits of the counts (module docstring): the confusion matrix whole or
    not at all, the tenths' rows and events each with complementary suppression; made
    exactly 0/1 (`ops.exact_bits`: CrypTen's products of bits are off by units of
    2^-16, which would open a hidden count times 2^-16)."""
    confusion = all_of(ops, ops.reshape(reach[0:4], (4, 1)))  # (1,)
    whole = ops.reshape(ops.stack([confusion] * 4), (4,))
    halves = []  # tenths 0-4 (scores below the cutoff) and 5-9: each half's rows add up
    for start in (4, 4 + CALIBRATION_BINS):  # to a confusion row, its events to fn / tp
        for lo, hi in ((0, HALF), (HALF, CALIBRATION_BINS)):
            shown, _ = complementary(
                ops, reach[start + lo : start + hi], counts[start + lo : start + hi]
            )
            halves.append(shown)
    return ops.exact_bits(ops.concatenate([whole, *halves]))


def _calibration_bin(k: int, rows: int | None, events: int | None, total: float) -> dict:
    """One tenth of the score: rows, mean predicted probability, observed event rate."""
    return {
        "bin": [k / CALIBRATION_BINS, (k + 1) / CALIBRATION_BINS],
        "n": rows,
        "mean_predicted": total / rows if rows else None,
        "observed_rate": events / rows if rows and events is not None else None,
    }


def decode(opened: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """The released evaluation (None where suppressed) from the opened `outputs`."""
    bits = [exact_int(v) for v in opened["evaluation_released"]]
    masked = np.asarray(opened["evaluation_counts"], dtype=float)
    sums = np.asarray(opened["evaluation_score_sums"], dtype=float)
    auc_bit = exact_int(opened["evaluation_auc_released"].item())
    auc = float(opened["evaluation_auc"].item())
    counts = [exact_int(m) if b else None for b, m in zip(bits, masked, strict=True)]
    tn, fp, fn, tp = counts[:4]
    cells = [tn, fp, fn, tp]
    n = sum(c for c in cells if c is not None) if None not in cells else None
    accuracy = (tn + tp) / n if n and tn is not None and tp is not None else None
    rows = counts[4 : 4 + CALIBRATION_BINS]
    events = counts[4 + CALIBRATION_BINS :]
    calibration = [
        _calibration_bin(k, rows[k], events[k], float(sums[k])) for k in range(CALIBRATION_BINS)
    ]
    return {
        "n": n,
        "accuracy": accuracy,
        "auc": auc if auc_bit else None,
        "auc_resolution": 1 / AUC_BINS,
        "confusion": [[tn, fp], [fn, tp]],
        "confusion_layout": "[[tn, fp], [fn, tp]] at a predicted probability of 0.5",
        "calibration": calibration,
        "suppressed": "counts below the small-cell threshold are null, and so that none "
        "follows from the others, the confusion matrix is released whole or not at all "
        "and with a hidden tenth the smallest other tenth is hidden too",
    }
