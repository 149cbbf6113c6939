"""Joint counts of distinct patients in a cohort, with small-cell suppression in MPC.

How it runs: each party counts, in plaintext on its own data, the distinct patients
matching the cohort (diagnosis codes or prefixes, sex, age at `as_of`, onset window),
per cell of the optional stratification (`by` sex and/or age band; the cell layout
is fixed and public). Each party secret-shares its vector of cell counts; inside MPC
the vectors are summed, each total is compared with the small-cell threshold, and
the coordinator may open only, per cell, the bit [total >= threshold] and the product
of that bit with the total.

Leakage, plainly:
- each party: nothing beyond its own data (it sees only random-looking shares);
  it does not learn the totals;
- the coordinator (and through it the analyst): for each cell, whether the total
  across all hospitals reaches the threshold, and the total only if it does; a
  suppressed cell's value is never revealed to anyone, not even as shares that
  could be recombined (its opened product is 0);
- nobody learns any single hospital's count. The threshold itself is public (the
  maximum of the parties' policies).
Not covered: what released totals reveal in combination (differences between
overlapping queries, or a released total minus the counts n-1 colluding hospitals
know); only the threshold and each hospital's template approval limit that today.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from smpc_ehr.analyses.base import Analysis, Params
from smpc_ehr.backends.base import Secret, SecureOps, SecureProgram
from smpc_ehr.data.cohort import STRATA, CohortFilter, cell_labels, count_cells
from smpc_ehr.data.records import PartyData
from smpc_ehr.errors import TemplateError

COUNT_BITS = 32
"""Secret integers of 32 bits: totals up to 2^31 patients."""


def cohort_filter(params: Params) -> CohortFilter:
    """The cohort the template's parameters describe."""
    age = params.get("age")
    return CohortFilter(
        codes=tuple(params.get("codes") or ()),
        sex=params.get("sex"),
        age_min=age[0] if age else None,
        age_max=age[1] if age else None,
        as_of=params["as_of"],
        onset_from=params.get("onset_from"),
        onset_to=params.get("onset_to"),
    )


def strata(params: Params) -> tuple[str, ...]:
    """The stratification variables, in the fixed order of STRATA."""
    by = set(params.get("by") or ())
    return tuple(name for name in STRATA if name in by)


class CountAnalysis(Analysis):
    """Distinct patients per cell, released only where the joint total >= threshold."""

    name = "count"
    bits = COUNT_BITS

    def validate(self, params: Params) -> None:
        try:
            cohort_filter(params)
        except ValueError as exc:
            raise TemplateError(str(exc)) from exc

    def local_input(self, data: PartyData, params: Params) -> list[int]:
        _, counts = count_cells(data, cohort_filter(params), strata(params))
        return [int(c) for c in counts]

    def secure_program(self, local: list[int], params: Params, threshold: int) -> SecureProgram:
        async def program(ops: SecureOps) -> list[Secret]:
            totals = ops.sum_vectors(ops.input_ints(local, self.bits))
            released = ops.ge_public(totals, threshold)
            return [released, ops.mul(released, totals)]

        return program

    def finalize(self, opened: Sequence[float], params: Params, threshold: int) -> dict[str, Any]:
        by = strata(params)
        labels = cell_labels(by)
        k = len(labels)
        if len(opened) != 2 * k:
            raise ValueError(f"expected {2 * k} opened values, got {len(opened)}")
        exact = [_exact_int(v) for v in opened]
        cells = []
        for label, bit, masked in zip(labels, exact[:k], exact[k:], strict=True):
            if bit not in (0, 1) or (bit == 0 and masked != 0) or masked < 0:
                raise ValueError("opened count outputs are inconsistent")
            count = masked if bit else None
            cells.append({**label, "count": count, "suppressed": not bit})
        if not by:
            return {**cells[0], "threshold": threshold}
        return {"by": list(by), "cells": cells, "threshold": threshold}


def _exact_int(value: float) -> int:
    """An opened count as an integer; fixed-point backends are off by at most 2^-16."""
    nearest = round(value)
    if abs(value - nearest) > 0.01:
        raise ValueError(f"an opened count output ({value}) is not an integer")
    return int(nearest)
