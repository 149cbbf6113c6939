"""Noise for differential privacy inside MPC, for the analyses with a DP variant
(docs/privacy.md): the distributed discrete Gaussian.

A job asks for it with the template parameter `epsilon` (absent: an exact run). It
spends rho = `rho_for(epsilon, DELTA)` in zero-concentrated DP, split among the
analysis's noisy releases (`NoisyRelease.share`; the shares add up to at most 1, and
rho adds exactly under composition). For each release, every party plans the same
noise from public facts (the release's L2 sensitivity, size and rho share, the number
of parties n and its backend's tolerated colluders t), draws its own share with
`privacy.sampling.noise_share` (exact, CSPRNG) and inputs it secret-shared; the secure
program adds the sum of all n shares to the secret values before anything is compared
or opened. No party knows the total noise: any t colluders know only their own
shares, and the calibration rests on the other n - t.

Lattices. The discrete Gaussian protects values on the lattice its noise lives on: a
count is an integer (`add_int_noise`); a fixed-point value is a multiple of
2^-frac_bits, and its noise is drawn in those units (`add_fixed_noise`), so that the
released value stays on its grid and its fractional digits say nothing. Where a
released value is computed with fixed-point roundings, the caller adds the largest
effect of those roundings (a few units of 2^-frac_bits) to its sensitivity.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from smpc_ehr.privacy.accountant import Charge
from smpc_ehr.privacy.mechanism import NoisePlan, plan_noise, tolerated_colluders
from smpc_ehr.privacy.sampling import noise_share
from smpc_ehr.securemath.ops import Secret, SecureOps

if TYPE_CHECKING:  # base builds its default DP report from this module
    from smpc_ehr.analyses.base import JobSetting, Params

MECHANISM = "distributed discrete Gaussian"
DELTA = 1e-6
"""The delta every DP release is calibrated at (the policy's default): a job states
epsilon only, and spends the rho-zCDP that (epsilon, DELTA) allows."""
_SHARE_SLACK = 1e-9
"""Float slack on the sum of the rho shares of an analysis's releases."""


@dataclass(frozen=True)
class NoisyRelease:
    """One group of values a DP run releases with noise, and how that noise is sized.

    The values may have different units: value i is divided by `scales[i]` (its
    sensitivity unit: the most one patient changes it, in the value's own units) before
    the L2 sensitivity `l2` of the whole group is taken. So a count with a clipped sum
    beside it (scales 1 and the clipping width) has l2 = sqrt(2) when one patient
    changes both. Each value's noise is the planned noise times its scale.
    """

    name: str
    dim: int
    """How many values the group releases (its secret's size)."""
    l2: float
    """L2 sensitivity of the group, each value in units of its scale."""
    scales: tuple[float, ...] | float = 1.0
    """Per value (or one for all): the value units of one unit of sensitivity."""
    share: float = 1.0
    """The fraction of the job's rho this group spends."""

    def scale_vector(self) -> np.ndarray:
        scales = np.broadcast_to(np.asarray(self.scales, dtype=float), (self.dim,))
        if not np.all(np.isfinite(scales) & (scales > 0)):
            raise ValueError(f"release {self.name!r}: scales must be finite and > 0")
        return scales


def requested_epsilon(params: Params) -> float | None:
    """The epsilon a job asks for, or None for an exact run."""
    epsilon = params.get("epsilon")
    return None if epsilon is None else float(epsilon)


def charge(params: Params) -> Charge | None:
    """What a job spends (for a ledger), or None for an exact run: the rho its noise
    is calibrated to, so the ledger and the mechanism use one figure."""
    epsilon = requested_epsilon(params)
    return None if epsilon is None else Charge.of_epsilon(epsilon, DELTA)


def max_sites(params: Params) -> int:
    """How many hospitals one patient may be counted at (the template's `max_sites`,
    default 1: each patient at one hospital). A patient at k hospitals changes every
    sum k times over, so the sensitivity of every release is multiplied by k."""
    return int(params.get("max_sites") or 1)


def check_shares(releases: Sequence[NoisyRelease]) -> None:
    """ValueError unless the releases' rho shares are positive and add up to <= 1."""
    if any(not 0 < r.share <= 1 for r in releases):
        raise ValueError("every noisy release needs a rho share in (0, 1]")
    total = math.fsum(r.share for r in releases)
    if total > 1 + _SHARE_SLACK:
        raise ValueError(f"the noisy releases spend {total:g} of the job's rho, more than 1")


def plan(params: Params, release: NoisyRelease, backend: str, parties: int) -> NoisePlan | None:
    """Each party's share scale (in units of sensitivity) for one release, private
    against the backend's colluders; None for an exact run."""
    spent = charge(params)
    if spent is None:
        return None
    colluders = tolerated_colluders(backend, parties)
    sensitivity = release.l2 * max_sites(params)
    rho = spent.rho * release.share
    return plan_noise(sensitivity, parties, colluders, rho=rho, dim=release.dim)


def noise_sd(params: Params, release: NoisyRelease, backend: str, parties: int) -> float:
    """The standard deviation of the released noise per unit of sensitivity (a value's
    is this times its scale), from the plan; a DP run's only (ValueError if exact)."""
    noise = plan(params, release, backend, parties)
    if noise is None:
        raise ValueError(f"release {release.name!r} has no noise in an exact run")
    return math.sqrt(noise.released_variance)


def report(
    params: Params, releases: Sequence[NoisyRelease], setting: JobSetting
) -> dict[str, Any] | None:
    """The released JSON's "dp" entry: what a statistician needs for intervals that
    include the noise. `noise_sd` is each released value's noise standard deviation in
    its own units (one number for a single group of equal scales, else by group name:
    a number, or a list where the scales differ)."""
    spent = charge(params)
    if spent is None:
        return None
    if not releases:
        raise ValueError("this analysis has no differentially private variant")
    check_shares(releases)
    sds: dict[str, float | list[float]] = {}
    colluders = tolerated_colluders(setting.backend, setting.parties)
    for release in releases:
        sd = noise_sd(params, release, setting.backend, setting.parties) * release.scale_vector()
        sds[release.name] = float(sd[0]) if np.all(sd == sd[0]) else [float(v) for v in sd]
    return {
        "mechanism": MECHANISM,
        "epsilon": requested_epsilon(params),
        "delta": DELTA,
        "rho": spent.rho,
        "noise_sd": next(iter(sds.values())) if len(sds) == 1 else sds,
        "colluders": colluders,
        "max_sites": max_sites(params),
    }


def _my_shares(noise: NoisePlan, scales: np.ndarray, unit: float) -> list[int]:
    """This party's noise share per value, in lattice units of `unit`."""
    lattice = noise.share_scale * scales / unit
    shares = np.empty(len(scales), dtype=np.int64)
    for scale in np.unique(lattice):  # one exact sampler per distinct scale
        where = np.flatnonzero(lattice == scale)
        shares[where] = noise_share(float(scale), len(where))
    return [int(x) for x in shares]


def add_int_noise(
    ops: SecureOps, totals: Secret, params: Params, release: NoisyRelease, bits: int
) -> Secret:
    """Secret integers `totals` (a vector of `release.dim`) plus the sum of every
    party's noise share, each drawn here and input secret-shared as `bits`-bit
    integers; unchanged for an exact run (no extra input or round). Scales must be
    whole numbers: the noise lives on the integers."""
    noise = plan(params, release, ops.backend, ops.n_parties)
    if noise is None:
        return totals
    scales = release.scale_vector()
    if not np.array_equal(scales, np.round(scales)):
        raise ValueError(f"release {release.name!r}: integer noise needs whole-number scales")
    mine = _my_shares(noise, scales, 1.0)
    return ops.add(totals, ops.sum_vectors(ops.input_ints(mine, bits)))


def add_fixed_noise(
    ops: SecureOps, values: Secret, params: Params, release: NoisyRelease
) -> Secret:
    """Secret fixed-point `values` (any shape, `release.dim` in all) plus the sum of
    every party's noise share, drawn on the backend's fixed-point grid (multiples of
    2^-frac_bits, so the result stays on it) and input secret-shared; unchanged for an
    exact run."""
    noise = plan(params, release, ops.backend, ops.n_parties)
    if noise is None:
        return values
    unit = 2.0**-ops.frac_bits
    mine = np.asarray(_my_shares(noise, release.scale_vector(), unit), dtype=float) * unit
    shape = tuple(getattr(values, "shape", ()))
    if int(np.prod(shape)) != release.dim:
        raise ValueError(f"release {release.name!r} has {release.dim} values, not {shape}")
    shares = [
        ops.input_values(src, mine.reshape(shape) if src == ops.my_index else None, shape)
        for src in range(ops.n_parties)
    ]
    return ops.add(values, ops.sum_vectors(shares))
