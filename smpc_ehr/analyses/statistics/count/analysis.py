"""Joint counts of distinct patients in a cohort, with small-cell suppression in MPC.

How it runs: each party counts, in plaintext on its own data, the distinct patients
matching the cohort (diagnosis codes or prefixes, sex, age at `as_of`, onset window),
per cell of the optional stratification (`by` sex and/or age band; the cell layout
is fixed and public). Each party secret-shares its vector of cell counts; inside MPC
the vectors are summed, each total is compared with the small-cell threshold, and
the coordinator may open only, per cell, the bit [total >= threshold] and the product
of that bit with the total.

With `epsilon` (differential privacy, common/noise.py): each party also draws its
share of distributed discrete Gaussian noise per cell and inputs it secret-shared; the
noise is added to the totals inside MPC before the threshold test, so only noisy
totals are compared and opened. Sensitivity: a patient is counted at one hospital and
in one cell of the table (the strata partition the cohort), so adding or removing one
patient changes one cell by 1: the L2 sensitivity of the whole table is 1.

Leakage: see the package docstring (the template's text, verbatim).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from smpc_ehr.analyses.base import Analysis, NamedProgram, Output, Params
from smpc_ehr.analyses.common.cells import (
    cell_release,
    decode_released,
    noisy_counts_program,
    released_counts_outputs,
)
from smpc_ehr.analyses.common.noise import NoisyRelease
from smpc_ehr.analyses.common.tidy import Row
from smpc_ehr.analyses.common.variables import cohort_filter
from smpc_ehr.analyses.statistics.count import dedup
from smpc_ehr.analyses.statistics.count.tidy import tidy_count
from smpc_ehr.data import pushdown
from smpc_ehr.data.cohort import STRATA, cell_labels, count_cells
from smpc_ehr.data.records import PartyData
from smpc_ehr.data.relations import SqlSnapshot
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
        dedup.validate(params)

    def validate_backend(self, params: Params, backend: str) -> None:
        dedup.validate_backend(params, backend)

    def local_input(self, data: PartyData, params: Params) -> Any:
        if dedup.wanted(params):
            return dedup.local_input(data, params, strata(params))
        _, counts = count_cells(data, cohort_filter(params), strata(params))
        return [int(c) for c in counts]

    def local_input_sql(self, snapshot: SqlSnapshot, params: Params) -> list[int] | None:
        if dedup.wanted(params):  # the deduplicated count's input is not pushed down
            return None
        _, counts = pushdown.count_cells(snapshot, cohort_filter(params), strata(params))
        return [int(c) for c in counts]

    def outputs(self, params: Params) -> tuple[Output, ...]:
        if dedup.wanted(params):
            return released_counts_outputs(len(cell_labels(strata(params))) + 1)
        return released_counts_outputs(len(cell_labels(strata(params))))

    def noisy_releases(self, params: Params) -> tuple[NoisyRelease, ...]:
        return (cell_release(len(cell_labels(strata(params)))),)

    def secure_program(self, local: Any, params: Params, threshold: int) -> NamedProgram:
        if dedup.wanted(params):
            return dedup.secure_program(local, threshold)
        (release,) = self.noisy_releases(params)
        return noisy_counts_program(local, params, threshold, release)

    def finalize(
        self, opened: dict[str, np.ndarray], params: Params, threshold: int
    ) -> dict[str, Any]:
        totals = decode_released(opened)
        if dedup.wanted(params):
            return dedup.finalize(totals, strata(params), threshold)
        by = strata(params)
        labels = cell_labels(by)
        cells = [
            {**label, "count": count, "suppressed": count is None}
            for label, count in zip(labels, totals, strict=True)
        ]
        if not by:
            return {**cells[0], "threshold": threshold}
        return {"by": list(by), "cells": cells, "threshold": threshold}

    def render(self, result: dict[str, Any]) -> str:
        if result.get("dedup"):
            return dedup.render(result)
        return super().render(result)

    def tidy(self, result: dict[str, Any]) -> list[Row]:
        return tidy_count(result)
