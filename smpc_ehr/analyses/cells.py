"""Released counts: a table of joint counts, each cell compared with the small-cell
threshold inside MPC and opened only if it reaches it.

Shared by every analysis that releases counts (the joint count, histograms,
contingency tables, odds ratios). Each party inputs its vector of cell counts (the
layout is public); inside MPC the vectors are summed, each total t is compared with
the threshold, and the coordinator may open only the bit [t >= threshold] and the
product of that bit with t. A suppressed cell's value is therefore never revealed,
not even as shares that could be recombined (its opened product is 0).
"""

from __future__ import annotations

from collections.abc import Sequence

from smpc_ehr.backends.base import Secret, SecureOps, SecureProgram

COUNT_BITS = 32
"""Secret integers of 32 bits: totals up to 2^31 patients."""


def released_counts_program(local: Sequence[int], threshold: int) -> SecureProgram:
    """The secure program: this party's cell counts in, per cell (bit, bit * total) out."""

    async def program(ops: SecureOps) -> list[Secret]:
        totals = ops.sum_vectors(ops.input_ints(list(local), COUNT_BITS))
        released = ops.ge_public(totals, threshold)
        return [released, ops.mul(released, totals)]

    return program


def decode_released(opened: Sequence[float], cells: int) -> list[int | None]:
    """Per cell, the released total or None (suppressed), from what the program opened."""
    if len(opened) != 2 * cells:
        raise ValueError(f"expected {2 * cells} opened values, got {len(opened)}")
    exact = [exact_int(v) for v in opened]
    result: list[int | None] = []
    for bit, masked in zip(exact[:cells], exact[cells:], strict=True):
        if bit not in (0, 1) or (bit == 0 and masked != 0) or masked < 0:
            raise ValueError("opened count outputs are inconsistent")
        result.append(masked if bit else None)
    return result


def exact_int(value: float) -> int:
    """An opened count as an integer; fixed-point backends are off by at most 2^-16."""
    nearest = round(value)
    if abs(value - nearest) > 0.01:
        raise ValueError(f"an opened count output ({value}) is not an integer")
    return int(nearest)
