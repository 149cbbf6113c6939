"""The number of cohort patients a model leaves out (a missing value, no follow-up time),
released like a count: the parties' numbers are summed inside MPC and the total is opened
only if it reaches the small-cell threshold ("<T" otherwise), so a table that drops
patients can say how many without a small count leaving the computation."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from smpc_ehr.analyses.base import NamedSecrets, Output
from smpc_ehr.analyses.common.moments import party_arrays
from smpc_ehr.securemath.ops import SecureOps

LEFT_OUT_OUTPUTS = (Output("left_out_released", (1,)), Output("left_out", (1,)))
"""The bit [joint left out >= threshold] and bit x joint left out."""


def left_out_secrets(ops: SecureOps, left_out: int, threshold: int) -> NamedSecrets:
    """This party's left-out count in, `LEFT_OUT_OUTPUTS` out (one comparison)."""
    total = ops.sum(party_arrays(ops, np.array([float(left_out)])), axis=0)
    released = ops.ge_public(total, threshold)
    return {"left_out_released": released, "left_out": ops.mul(released, total)}


def decode_left_out(opened: Mapping[str, np.ndarray]) -> int | None:
    """The released joint left-out count, or None (below the threshold)."""
    if opened["left_out_released"].item() <= 0.5:
        return None
    return round(opened["left_out"].item())
