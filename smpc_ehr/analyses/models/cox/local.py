"""The local step of the Cox regression (plaintext, on one party's own data): its
complete cases on the Kaplan-Meier grid and, at given coefficients, its risk-set sums
per grid point (or, stratified by hospital, its own score and information).

The cohort, time zero, the event and the censoring rule are the Kaplan-Meier
analysis's (`common.survival.patient_times`, the same parameters); follow-up is
cut at the horizon (an event after it counts as censored there). The features are the
logistic regression's (`common.features`: numeric columns, then one 0/1 column per
level but the first of each categorical variable); a patient missing any is left out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from smpc_ehr.analyses.base import Params
from smpc_ehr.analyses.common.features import feature_columns
from smpc_ehr.analyses.common.survival import patient_times
from smpc_ehr.analyses.common.variables import select_cohort
from smpc_ehr.data.records import PartyData

RANGE_BITS = 29
"""The pooled bound M = sum of w (1 + max_k z_k^2) over all patients must stay below
2^RANGE_BITS: every risk-set sum (S0, S1, S2) is at most M, and the normalisation by
powers of two inside MPC takes values below 2^30 (`securemath.division`)."""
EVENT_FLOOR_BITS = 6
"""Each patient with an event must have a weight w of at least 2^EVENT_FLOOR_BITS, so
that the pooled S0 at every grid point with an event is at least that: its whole-number
bound (the sum of the parties' ceil(S0)) is then within a factor 1 + P/64 of it, which
keeps the normalised S0 inside the reciprocal's domain."""


@dataclass(frozen=True)
class CoxData:
    """A party's complete cases: raw features (n x d), grid times (at most the horizon)
    and event flags (an event at or before the horizon)."""

    x: np.ndarray
    time: np.ndarray
    event: np.ndarray
    left_out: int


def local_data(data: PartyData, params: Params) -> CoxData:
    """This party's usable cohort patients (Kaplan-Meier's rule) with every feature."""
    times = patient_times(data, params)
    cohort = select_cohort(data, params)
    x = feature_columns(data, params, cohort)[times.usable]
    keep = ~np.isnan(x).any(axis=1)
    horizon = int(params["horizon"])
    t = times.time[keep]
    return CoxData(
        np.ascontiguousarray(x[keep]),
        np.minimum(t, horizon),
        times.event[keep] & (t <= horizon),
        times.left_out + int(np.count_nonzero(~keep)),
    )


def pairs(k: int) -> list[tuple[int, int]]:
    """The upper triangle's (a, b), a <= b, row by row: the layout of S2 and I."""
    return [(a, b) for a in range(k) for b in range(a, k)]


def full_matrix(upper: np.ndarray, k: int) -> np.ndarray:
    """The symmetric k x k matrix of an upper triangle laid out as `pairs`."""
    out = np.zeros((k, k))
    for value, (a, b) in zip(upper, pairs(k), strict=True):
        out[a, b] = out[b, a] = value
    return out


@dataclass(frozen=True)
class RiskSums:
    """Per grid point j = 0..horizon: S0_j = sum over time >= j of w, S1_j (k x G) and
    S2_j (upper triangle x G) of w z and w z z'; d_j the events at j; the sum of z over
    the events (k)."""

    s0: np.ndarray
    s1: np.ndarray
    s2: np.ndarray
    events: np.ndarray
    event_sum: np.ndarray


def _from_the_end(values: np.ndarray) -> np.ndarray:
    """Sums over t >= j along the last axis."""
    return np.flip(np.cumsum(np.flip(values, axis=-1), axis=-1), axis=-1)


def risk_sums(
    z: np.ndarray, w: np.ndarray, time: np.ndarray, event: np.ndarray, grid: int
) -> RiskSums:
    """The risk-set sums of patients with features z (n x k), weights w and grid times."""
    k = z.shape[1]
    terms = [w, *(w * z[:, a] for a in range(k)), *(w * z[:, a] * z[:, b] for a, b in pairs(k))]
    binned = np.array([np.bincount(time, t, minlength=grid)[:grid] for t in terms])
    sums = _from_the_end(binned.reshape(len(terms), grid))
    return RiskSums(
        sums[0],
        sums[1 : 1 + k],
        sums[1 + k :],
        np.bincount(time[event], minlength=grid)[:grid].astype(float),
        z[event].sum(axis=0),
    )


def score_information(sums: RiskSums) -> tuple[np.ndarray, np.ndarray]:
    """Breslow's score U = sum over events of z - sum_j d_j S1_j / S0_j and information
    I = sum_j d_j (S2_j / S0_j - S1_j S1_j' / S0_j^2) (its upper triangle), in floats."""
    k = len(sums.event_sum)
    used = sums.events > 0
    r1 = sums.s1[:, used] / sums.s0[used]
    r2 = sums.s2[:, used] / sums.s0[used]
    d = sums.events[used]
    outer = np.array([r1[a] * r1[b] for a, b in pairs(k)]).reshape(len(pairs(k)), -1)
    return sums.event_sum - r1 @ d, (r2 - outer) @ d


def weight_shift(n: int, k: int) -> float:
    """The public log-scale of the weights, w = exp(z'b) 2^L: L = (RANGE_BITS +
    EVENT_FLOOR_BITS - log2(N (k + 1))) / 2 + 1, which leaves the patients' relative
    hazards exp(z'b) room of about 2^(L - EVENT_FLOOR_BITS) below 1 for events and
    2^(RANGE_BITS - L - log2(N (k + 1))) above 1 on average (z is standardised, so the
    mean of z'b over all patients is 0)."""
    bits = (RANGE_BITS + EVENT_FLOOR_BITS - math.log2(max(1, n) * (k + 1))) / 2 + 1
    return math.floor(bits) * math.log(2.0)


def step_input(
    cox: CoxData, z: np.ndarray, beta: np.ndarray, shift: float, grid: int
) -> np.ndarray:
    """This party's input to one Newton step (`secure.Layout`): ceil(S0), S0, d, S1, S2,
    the events' sum of z, its range flag and its share of the range bound M / 2^29. The
    flag is 1 if its events' weights reach 2^EVENT_FLOOR_BITS and its own M is below
    2^RANGE_BITS; otherwise every sum is input as 0 (nothing out of range enters)."""
    k = z.shape[1]
    w = np.exp(z @ beta + shift) if len(z) else np.zeros(0)
    sums = risk_sums(z, w, cox.time, cox.event, grid)
    bound = float(np.sum(w * (1.0 + (np.max(z**2, axis=1) if k and len(z) else 0.0))))
    events_ok = bool(np.all(w[cox.event] >= 2.0**EVENT_FLOOR_BITS))
    flag = events_ok and bound < 2.0**RANGE_BITS
    values = np.concatenate(
        [
            np.ceil(sums.s0),
            sums.s0,
            sums.events,
            sums.s1.ravel(),
            sums.s2.ravel(),
            sums.event_sum,
            [1.0, bound / 2.0**RANGE_BITS],
        ]
    )
    if not flag:
        values = np.zeros_like(values)
    return values


def stratum_input(cox: CoxData, z: np.ndarray, beta: np.ndarray, grid: int) -> np.ndarray:
    """Stratified by hospital: this party's own score and information (upper triangle),
    from its own risk sets (its own baseline hazard), in floats."""
    w = np.exp(z @ beta - (float(np.max(z @ beta)) if len(z) else 0.0))
    if not np.any(cox.event):
        k = z.shape[1]
        return np.zeros(k + len(pairs(k)))
    u, info = score_information(risk_sums(z, w, cox.time, cox.event, grid))
    return np.concatenate([u, info])
