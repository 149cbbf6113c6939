"""Each party's noise share: exact discrete Gaussian samples from OpenDP, whose
samplers work in exact arithmetic (Canonne, Kamath, Steinke 2020) on bytes from a
cryptographically secure generator (OpenSSL's). No float and no numpy generator
touches the privacy-critical draw; numpy only holds the result."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import opendp.prelude as dp

dp.enable_features("contrib")


def noise_share(scale: float, size: int) -> npt.NDArray[np.int64]:
    """`size` independent draws of N_Z(0, scale^2): one party's share of the noise for
    `size` released integers. Never reproducible: there is no seed."""
    if size < 0:
        raise ValueError(f"size must be >= 0, not {size}")
    if size == 0:
        return np.zeros(0, dtype=np.int64)
    space = dp.vector_domain(dp.atom_domain(T="i64"), size=size), dp.l2_distance(T="i64")
    measurement = dp.m.make_gaussian(*space, scale=scale)
    return np.asarray(measurement([0] * size), dtype=np.int64)
