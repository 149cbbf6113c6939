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
from smpc_ehr.analyses.cells import decode_released, released_counts_program
from smpc_ehr.analyses.variables import cohort_filter
from smpc_ehr.backends.base import SecureProgram
from smpc_ehr.data.cohort import STRATA, cell_labels, count_cells
from smpc_ehr.data.records import PartyData
from smpc_ehr.securemath.constants import COUNT_INPUT_BITS


def strata(params: Params) -> tuple[str, ...]:
    """The stratification variables, in the fixed order of STRATA."""
    by = set(params.get("by") or ())
    return tuple(name for name in STRATA if name in by)


class CountAnalysis(Analysis):
    """Distinct patients per cell, released only where the joint total >= threshold."""

    name = "count"
    bits = COUNT_INPUT_BITS

    def validate(self, params: Params) -> None:
        cohort_filter(params)

    def local_input(self, data: PartyData, params: Params) -> list[int]:
        _, counts = count_cells(data, cohort_filter(params), strata(params))
        return [int(c) for c in counts]

    def secure_program(self, local: list[int], params: Params, threshold: int) -> SecureProgram:
        return released_counts_program(local, threshold)

    def finalize(self, opened: Sequence[float], params: Params, threshold: int) -> dict[str, Any]:
        by = strata(params)
        labels = cell_labels(by)
        totals = decode_released(opened, len(labels))
        cells = [
            {**label, "count": count, "suppressed": count is None}
            for label, count in zip(labels, totals, strict=True)
        ]
        if not by:
            return {**cells[0], "threshold": threshold}
        return {"by": list(by), "cells": cells, "threshold": threshold}
