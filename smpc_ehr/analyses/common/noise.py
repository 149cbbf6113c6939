"""Noise for differential privacy inside MPC, for the analyses with a DP variant
(docs/privacy.md): the distributed discrete Gaussian.

A job asks for it with the template parameter `epsilon` (absent: an exact run). Each
party plans the same noise from public facts (epsilon, DELTA, the release's L2
sensitivity and size, the number of parties n and its backend's tolerated colluders
t), draws its own share with `privacy.sampling.noise_share` (exact, CSPRNG) and
inputs it secret-shared; the secure program adds the sum of all n shares to the
totals before anything is compared or opened. No party knows the total noise: any t
colluders know only their own shares, and the calibration rests on the other n - t.
"""

from __future__ import annotations

import math
from typing import Any

from smpc_ehr.analyses.base import JobSetting, Params
from smpc_ehr.privacy.accountant import Charge
from smpc_ehr.privacy.mechanism import NoisePlan, plan_noise, tolerated_colluders
from smpc_ehr.privacy.sampling import noise_share
from smpc_ehr.securemath.ops import Secret, SecureOps

MECHANISM = "distributed discrete Gaussian"
DELTA = 1e-6
"""The delta every DP release is calibrated at (the policy's default): a job states
epsilon only, and spends the rho-zCDP that (epsilon, DELTA) allows."""


def requested_epsilon(params: Params) -> float | None:
    """The epsilon a job asks for, or None for an exact run."""
    epsilon = params.get("epsilon")
    return None if epsilon is None else float(epsilon)


def charge(params: Params) -> Charge | None:
    """What a job spends (for a ledger), or None for an exact run."""
    epsilon = requested_epsilon(params)
    return None if epsilon is None else Charge.of_epsilon(epsilon, DELTA)


def plan(
    params: Params, sensitivity: float, dim: int, backend: str, parties: int
) -> NoisePlan | None:
    """Each party's share scale for a release of `dim` integers of L2 `sensitivity`,
    private against the backend's colluders; None for an exact run."""
    epsilon = requested_epsilon(params)
    if epsilon is None:
        return None
    colluders = tolerated_colluders(backend, parties)
    return plan_noise(sensitivity, parties, colluders, epsilon=epsilon, delta=DELTA, dim=dim)


def report(
    params: Params, sensitivity: float, dim: int, setting: JobSetting
) -> dict[str, Any] | None:
    """The released JSON's "dp" entry: what a statistician needs for intervals that
    include the noise (`noise_sd` is the released standard deviation of each value)."""
    noise = plan(params, sensitivity, dim, setting.backend, setting.parties)
    if noise is None:
        return None
    return {
        "mechanism": MECHANISM,
        "epsilon": requested_epsilon(params),
        "delta": DELTA,
        "rho": noise.rho,
        "noise_sd": math.sqrt(noise.released_variance),
        "colluders": noise.parties - noise.honest,
    }


def add_noise(
    ops: SecureOps, totals: Secret, params: Params, sensitivity: float, bits: int
) -> Secret:
    """`totals` (a secret integer vector) plus the sum of every party's noise share,
    each drawn here (this party's, in plaintext) and input secret-shared as `bits`-bit
    integers; `totals` unchanged for an exact run (no extra input or round)."""
    dim = int(totals.shape[0])
    noise = plan(params, sensitivity, dim, ops.backend, ops.n_parties)
    if noise is None:
        return totals
    mine = [int(x) for x in noise_share(noise.share_scale, dim)]
    return ops.add(totals, ops.sum_vectors(ops.input_ints(mine, bits)))
