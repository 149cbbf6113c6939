"""Joint histogram of a numeric variable over given bin edges, with small-cell
suppression in MPC.

How it runs: each party selects its cohort (the joint count's parameters; none = all
patients) and, in plaintext on its own data, counts its patients per bin of the public
edges e_0 < e_1 < ... < e_k with numpy.histogram's semantics: bin i is [e_i, e_{i+1}),
the last bin [e_{k-1}, e_k] is closed. Patients with a value outside [e_0, e_k] go to
an "outside" cell, patients without a value to a "missing" cell. Each party
secret-shares its vector of cell counts in the fixed public layout

    [bin_0, ..., bin_{k-1}, outside, missing]        (k + 1 + 1 = len(edges) + 1 cells)

and the shared released-counts program (`common/cells.py`) sums the vectors inside
MPC and opens, per cell, only the bit [total >= threshold] and the total if it is set. No
total over all cells is released: with one cell suppressed, it would give that cell
away.

With `epsilon` (differential privacy, common/noise.py and common/cells.py): each party
also draws its share of distributed discrete Gaussian noise per cell (the bins, the
outside and the missing cell) and inputs it secret-shared; the noise is added to the
totals inside MPC before the threshold test, so only noisy counts are compared and
opened. A patient is in exactly one of these cells, so the L2 sensitivity of the whole
vector is 1 and it spends the job's whole rho. Values outside the edges are counted in
the outside cell, as in an exact run.

Leakage: see the package docstring (the template's text, verbatim).
"""

from __future__ import annotations

import math
from itertools import pairwise
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
from smpc_ehr.analyses.common.variables import (
    CONDITION,
    cohort_filter,
    numeric_values,
    select_cohort,
    value_limit,
)
from smpc_ehr.analyses.statistics.histogram.render import render_histogram
from smpc_ehr.analyses.statistics.histogram.tidy import tidy_histogram
from smpc_ehr.data.records import PartyData
from smpc_ehr.errors import TemplateError
from smpc_ehr.securemath.constants import COUNT_INPUT_BITS

MIN_EDGES = 2
MAX_EDGES = 51
"""At most 50 bins: enough for any plot, and it bounds the work inside MPC."""
_NOT_NUMERIC = ("sex", "age_band", CONDITION)


def bin_edges(params: Params) -> tuple[float, ...]:
    """The bin edges as floats; TemplateError unless there are 2..51, strictly increasing."""
    edges = tuple(float(e) for e in params.get("edges") or ())
    if not MIN_EDGES <= len(edges) <= MAX_EDGES:
        raise TemplateError(
            f"parameter 'edges' needs {MIN_EDGES} to {MAX_EDGES} bin edges, got {len(edges)}"
        )
    if not all(math.isfinite(e) for e in edges):
        raise TemplateError("parameter 'edges': bin edges must be finite numbers")
    for lo, hi in pairwise(edges):
        if not lo < hi:
            raise TemplateError(
                f"parameter 'edges' must be strictly increasing; {lo:g} is followed by {hi:g}"
            )
    return edges


class HistogramAnalysis(Analysis):
    """Patients per bin of a numeric variable, each bin released only if >= threshold."""

    name = "histogram"
    bits = COUNT_INPUT_BITS

    def validate(self, params: Params) -> None:
        cohort_filter(params)
        bin_edges(params)
        variable = params.get("variable")
        if not variable:
            raise TemplateError("parameter 'variable' is required (a numeric column)")
        if variable in _NOT_NUMERIC:
            raise TemplateError(
                f"the histogram needs a numeric column; {variable!r} is categorical "
                "(use the count or contingency analysis for it)"
            )

    def local_input(self, data: PartyData, params: Params) -> list[int]:
        edges = np.asarray(bin_edges(params))
        cohort = select_cohort(data, params)
        values = numeric_values(data, params["variable"], cohort, value_limit(params))
        known = values[~np.isnan(values)]
        inside = (known >= edges[0]) & (known <= edges[-1])
        bins, _ = np.histogram(known[inside], bins=edges)
        outside = len(known) - int(np.count_nonzero(inside))
        missing = len(values) - len(known)
        return [*(int(c) for c in bins), outside, missing]

    def outputs(self, params: Params) -> tuple[Output, ...]:
        return released_counts_outputs(len(bin_edges(params)) + 1)  # bins, outside, missing

    def noisy_releases(self, params: Params) -> tuple[NoisyRelease, ...]:
        return (cell_release(len(bin_edges(params)) + 1),)

    def secure_program(self, local: list[int], params: Params, threshold: int) -> NamedProgram:
        (release,) = self.noisy_releases(params)
        return noisy_counts_program(local, params, threshold, release)

    def render(self, result: dict[str, Any]) -> str:
        return render_histogram(result)

    def tidy(self, result: dict[str, Any]) -> list[Row]:
        return tidy_histogram(result)

    def finalize(
        self, opened: dict[str, np.ndarray], params: Params, threshold: int
    ) -> dict[str, Any]:
        edges = bin_edges(params)
        cells = decode_released(opened)
        counts = cells[: len(edges) - 1]
        outside, missing = cells[-2], cells[-1]
        return {
            "variable": params["variable"],
            "edges": list(edges),
            "counts": counts,
            "suppressed": [c is None for c in counts],
            "outside": outside,
            "missing": missing,
            "threshold": threshold,
            "missing_values": "excluded; their count is missing",
        }
