"""Each party's noise share: exact discrete Gaussian samples from OpenDP, whose
samplers work in exact arithmetic (Canonne, Kamath, Steinke 2020) on bytes from a
cryptographically secure generator (OpenSSL's). No float and no numpy generator
touches the privacy-critical draw; numpy only holds the result."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from opendp.domains import atom_domain, vector_domain
from opendp.measurements import make_gaussian
from opendp.metrics import l2_distance
from opendp.mod import enable_features  # not opendp.prelude: it imports sklearn and polars

enable_features("contrib")


def noise_share(scale: float, size: int) -> npt.NDArray[np.int64]:
    """`size` independent draws of N_Z(0, scale^2): one party's share of the noise for
    `size` released integers. Never reproducible: there is no seed."""
    if size < 0:
        raise ValueError(f"size must be >= 0, not {size}")
    if size == 0:
        return np.zeros(0, dtype=np.int64)
    space = vector_domain(atom_domain(T="i64"), size=size), l2_distance(T="i64")
    measurement = make_gaussian(*space, scale=scale)
    return np.asarray(measurement([0] * size), dtype=np.int64)
