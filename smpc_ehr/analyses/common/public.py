"""Public figures among a program's named outputs (an iteration count, a padded size,
the exponents of a public scaling): every party knows them, the coordinator gets them
opened beside the secrets."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import ArrayLike

from smpc_ehr.analyses.base import NamedSecrets
from smpc_ehr.securemath.ops import SecureOps, public_values


def public_outputs(ops: SecureOps, values: Mapping[str, ArrayLike]) -> NamedSecrets:
    """The public arrays as secrets by name (in their own shapes), input by party 0 in
    one go (`public_values`): one input however many figures."""
    arrays = {name: np.asarray(value, dtype=float) for name, value in values.items()}
    joined = public_values(ops, np.concatenate([a.ravel() for a in arrays.values()]))
    named: NamedSecrets = {}
    start = 0
    for name, array in arrays.items():
        named[name] = ops.reshape(joined[start : start + array.size], array.shape)
        start += array.size
    return named
