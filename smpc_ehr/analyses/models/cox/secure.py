"""The Cox regression's step inside MPC: from the parties' risk-set sums, pooled, the
score and information of Breslow's partial likelihood, with secure reciprocals of the
pooled S0 on every grid point at once; the range check of the weights; and the public
scale of the information for the Newton-Schulz start.

Why the sums are normalised by powers of two: S0 ranges from the whole cohort's
weight at time 0 to one patient's near the horizon, 2^20 and more apart, and CrypTen
has 16 fractional bits, its reciprocal a domain of [0.5, 8]. Each grid point's column
[ceil bound of S0, S0, S1, S2] is brought by the secret power of two of its
whole-number bound (the sum of the parties' ceil(S0), `division.pow2_normalize`) into
[1, 2), so S0 lands in [1 - P/64, 2) wherever a patient has an event there (the weight
floor, `local.EVENT_FLOOR_BITS`), where Newton's iteration takes its reciprocal to full
precision; the ratios S1/S0 and S2/S0 (weighted means over the risk set) come out
with absolute errors of a few units of the last place. Elsewhere (no event at the
point) the values stay bounded and are multiplied by d_j = 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from smpc_ehr.analyses.models.cox.local import pairs
from smpc_ehr.errors import JointRefusal
from smpc_ehr.securemath.boolean import all_of
from smpc_ehr.securemath.division import pow2_normalize, reciprocal_from_one_to_two
from smpc_ehr.securemath.ops import Secret, SecureOps

TRACE_EXPONENTS = np.arange(-8, 10)
"""The powers of two the information's trace (per event) is compared with, once."""
OUT_OF_RANGE = (
    "the relative hazards exp(x'b) of the current coefficients span more than the secure "
    "fixed-point arithmetic holds (an event patient's far below the average, or their sum "
    "too large); remove features with extreme values, or use a smaller cohort; nothing is "
    "released"
)


@dataclass(frozen=True)
class Layout:
    """A party's step input (`local.step_input`): ceil(S0), S0, d (G each), S1 (k x G),
    S2 (upper triangle x G), the events' sum of z (k), the range flag and bound (1 each)."""

    k: int
    grid: int

    @property
    def triangle(self) -> int:
        return self.k * (self.k + 1) // 2

    @property
    def size(self) -> int:
        return (3 + self.k + self.triangle) * self.grid + self.k + 2


async def require_in_range(ops: SecureOps, pooled: Secret, layout: Layout) -> None:
    """Open to the parties only [every party's flag is 1 and the pooled M / 2^29 <= 1];
    JointRefusal (naming no one) if not."""
    flags, bound = pooled[layout.size - 2 : layout.size - 1], pooled[layout.size - 1 :]
    checks = ops.concatenate(
        [
            ops.add_public(flags, -(ops.n_parties - 0.5)),
            ops.add_public(ops.mul_public(bound, -1.0), 1.0),
        ]
    )
    bits = ops.reshape(ops.ge_public(checks, 0.0), (2, 1))
    if not (await ops.reveal(all_of(ops, bits)))[0] > 0.5:
        raise JointRefusal(OUT_OF_RANGE)


def score_information(ops: SecureOps, pooled: Secret, layout: Layout) -> tuple[Secret, Secret]:
    """The secret score U (k) and information I (upper triangle) from the pooled sums:
    U = sum over events of z - sum_j d_j S1_j / S0_j, I = sum_j d_j (S2_j / S0_j -
    (S1_j / S0_j)(S1_j / S0_j)'), vectorised over the grid points j."""
    g, k, t = layout.grid, layout.k, layout.triangle
    at = 3 * g
    rows = ops.concatenate(
        [
            ops.reshape(pooled[0 : 2 * g], (2, g)),  # ceil bound, S0
            ops.reshape(pooled[at : at + (k + t) * g], (k + t, g)),  # S1, S2
        ]
    )
    events = pooled[2 * g : 3 * g]
    event_sum = pooled[at + (k + t) * g : at + (k + t) * g + k]
    normal = pow2_normalize(ops, rows)
    s0 = normal[1]
    inverse = reciprocal_from_one_to_two(ops, s0)
    # One more Newton step: S0 may lie a little below 1 (in [1 - P/64, 1)), where the
    # start line is further off; this squares what is left (and corrects roundings).
    inverse = ops.sub(ops.add(inverse, inverse), ops.mul(inverse, ops.mul(s0, inverse)))
    ratios = ops.mul(normal[2:], ops.stack([inverse] * (k + t)))  # (k + t) x G
    r1, r2 = ratios[:k], ratios[k:]
    both = pairs(k)
    outer = ops.mul(ops.stack([r1[a] for a, _ in both]), ops.stack([r1[b] for _, b in both]))
    terms = ops.concatenate([r1, ops.sub(r2, outer)])
    totals = ops.sum(ops.mul(terms, ops.stack([events] * (k + t))), axis=1)
    return ops.sub(event_sum, totals[:k]), totals[k:]


def full_secret(ops: SecureOps, upper: Secret, k: int) -> Secret:
    """The symmetric k x k secret matrix of an upper triangle laid out as `local.pairs`."""
    index = {pair: i for i, pair in enumerate(pairs(k))}

    def entry(a: int, b: int) -> Secret:
        i = index[(min(a, b), max(a, b))]
        return upper[i : i + 1]

    return ops.stack([ops.concatenate([entry(a, b) for b in range(k)]) for a in range(k)])


async def trace_exponent(ops: SecureOps, information: Secret, k: int, events: int) -> int:
    """The smallest e in TRACE_EXPONENTS with trace(I) / D < 2^e (the largest if none),
    opened to the parties: one batch of comparisons, their count opened. Why: the
    Newton-Schulz start needs a public bound on the largest eigenvalue of the
    information, which the trace gives (for a positive definite matrix)."""
    index = {pair: i for i, pair in enumerate(pairs(k))}
    diagonal = ops.concatenate([information[index[(a, a)] : index[(a, a)] + 1] for a in range(k)])
    trace = ops.mul_public(ops.sum(ops.reshape(diagonal, (1, k)), axis=1), 1.0 / events)  # (1,)
    bounds = np.ldexp(1.0, TRACE_EXPONENTS).reshape(-1, 1)
    compared = ops.add_public(ops.stack([trace] * len(bounds)), -bounds)  # exponents x 1
    count = round(float((await ops.reveal(ops.sum(ops.ge_public(compared, 0.0), axis=0)))[0]))
    return int(TRACE_EXPONENTS[min(count, len(bounds) - 1)])
