"""The "Table 1" of a paper: per group and overall, n; mean (SD) or median [IQR] of
continuous variables; n (%) per level of categorical variables; the missing count of
every variable; the group-comparison p-value.

How it runs: each party, over its own cohort, counts its patients per column and
cell of the table and reduces each continuous variable to local moments and grid
counts (`layout.local_table`); everything is secret-shared as fixed point, pooled,
and suppressed inside MPC (`secure.table1_program`, whose docstring gives the rule);
the coordinator opens only bits and bits times values. It then computes
percentages (of the column's n), sample SDs, quartiles' grid points and the p-values
(`compare`) from the opened values, in the clear.

Leakage: see the package docstring (the template's text, verbatim).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from smpc_ehr.analyses.base import Analysis, NamedProgram, Output, Params
from smpc_ehr.analyses.common.cells import exact_int
from smpc_ehr.analyses.common.tidy import Row
from smpc_ehr.analyses.common.variables import cohort_filter
from smpc_ehr.analyses.statistics.table1.compare import categorical_test, continuous_test
from smpc_ehr.analyses.statistics.table1.layout import (
    MISSING,
    Block,
    Layout,
    layout,
    local_table,
)
from smpc_ehr.analyses.statistics.table1.render import render_table1
from smpc_ehr.analyses.statistics.table1.secure import table1_outputs, table1_program
from smpc_ehr.analyses.statistics.table1.tidy import tidy_table1
from smpc_ehr.data.records import PartyData

OVERALL = "Overall"
SUPPRESSION = (
    "a count from 1 to the threshold less one is hidden (0 is shown); within a variable, "
    "a column hiding a count hides the smallest other count of at least the threshold "
    "too, so its n minus the shown counts gives none; an overall count is hidden where a "
    "group hides that row's count (and with another if it would be alone); a group with "
    "a hidden n is hidden whole, with the smallest other group"
)
MISSING_RULE = (
    "counted per variable (the missing row); means, SDs and quartiles over the patients "
    "with a value; percentages of the column's n"
)


def decimals_for(sd: float | None) -> int:
    """Decimals from a variable's scale: its SD to two significant digits (0 to 4)."""
    if sd is None or not sd > 0 or not math.isfinite(sd):
        return 1
    return min(4, max(0, 1 - math.floor(math.log10(sd))))


class Table1Analysis(Analysis):
    """A paper's Table 1 with complementary suppression decided inside MPC."""

    name = "table1"

    def validate(self, params: Params) -> None:
        cohort_filter(params)
        layout(params)

    def local_input(self, data: PartyData, params: Params) -> np.ndarray:
        shape = layout(params)
        local = local_table(data, params, shape)
        if local.size != shape.length:
            raise ValueError(f"local input of {local.size} values, the layout has {shape.length}")
        return local

    def outputs(self, params: Params) -> tuple[Output, ...]:
        return table1_outputs(layout(params))

    def secure_program(self, local: np.ndarray, params: Params, threshold: int) -> NamedProgram:
        return table1_program(local, layout(params), threshold)

    def render(self, result: dict[str, Any]) -> str:
        return render_table1(result)

    def tidy(self, result: dict[str, Any]) -> list[Row]:
        return tidy_table1(result)

    def finalize(
        self, opened: dict[str, np.ndarray], params: Params, threshold: int
    ) -> dict[str, Any]:
        shape = layout(params)
        n = _masked(opened["n_shown"], opened["n"])
        cells = [
            _masked(bits, values)
            for bits, values in zip(opened["cells_shown"], opened["cells"], strict=True)
        ]
        (left_out,) = _masked(opened["left_out_shown"], opened["left_out"])
        # Display order: overall first, then the groups.
        order = [shape.columns - 1, *range(shape.units)] if shape.grouped else [0]
        labels = [OVERALL, *shape.groups]
        rows: list[dict[str, Any]] = [
            {"variable": "n", "level": None, "statistic": "n", "cells": [n[c] for c in order]}
        ]
        for v, block in enumerate(shape.blocks):
            column_cells = [cells[c][block.start : block.stop] for c in order]
            n_col = [n[c] for c in order]
            if block.kind == "continuous":
                rows.append(_continuous_row(shape, v, block, opened, order))
            else:
                rows.append(_categorical_heading(shape, block, cells))
                for i, lvl in enumerate(block.labels[:-1]):
                    rows.append(_level_row(block, lvl, [col[i] for col in column_cells], n_col))
            rows.append(_level_row(block, MISSING, [col[-1] for col in column_cells], n_col))
        return {
            "group": shape.group,
            "columns": [
                {"label": labels[i], "group": None if i == 0 else labels[i]}
                for i in range(len(order))
            ],
            "rows": rows,
            "left_out": left_out if shape.grouped else 0,
            "suppression": SUPPRESSION,
            "missing_values": MISSING_RULE,
            "threshold": threshold,
        }


def _masked(bits: np.ndarray, values: np.ndarray) -> list[int | None]:
    """Released counts (None where the bit is 0); checks the opened values."""
    out: list[int | None] = []
    for bit, value in zip(np.ravel(bits), np.ravel(values), strict=True):
        b, x = exact_int(bit), exact_int(value)
        if b not in (0, 1) or (b == 0 and x != 0) or x < 0:
            raise ValueError("opened Table 1 counts are inconsistent")
        out.append(x if b else None)
    return out


def _level_row(
    block: Block, level: str, counts: list[int | None], n: list[int | None]
) -> dict[str, Any]:
    cells = [
        {"n": c, "percent": 100.0 * c / total if c is not None and total else None}
        for c, total in zip(counts, n, strict=True)
    ]
    return {"variable": block.name, "level": level, "statistic": "n (%)", "cells": cells}


def _categorical_heading(
    shape: Layout, block: Block, cells: list[list[int | None]]
) -> dict[str, Any]:
    """The variable's line: its test over the groups' level counts (missing left out)."""
    row: dict[str, Any] = {"variable": block.name, "level": None, "statistic": "n (%)"}
    if shape.grouped:
        table = [cells[u][block.start : block.stop - 1] for u in range(shape.units)]
        row.update(categorical_test(table))
    return row


def _continuous_row(
    shape: Layout, v: int, block: Block, opened: dict[str, np.ndarray], order: list[int]
) -> dict[str, Any]:
    """mean (SD) or median [IQR] per column, with its decimals and test."""
    name = block.name
    if name in shape.nonnormal:
        q = shape.nonnormal.index(name)
        g = shape.grids[q]
        cells = []
        for c in order:
            bits = [exact_int(b) for b in opened["quartile_shown"][q, c]]
            index = [exact_int(k) for k in opened["quartile"][q, c]]
            if any(b not in (0, 1) or (not b and k) for b, k in zip(bits, index, strict=True)):
                raise ValueError("opened Table 1 quartiles are inconsistent")
            values = [
                _grid_value(g.point(k), k, g.bins) if b else None
                for b, k in zip(bits, index, strict=True)
            ]
            cells.append(dict(zip(("q1", "median", "q3"), values, strict=True)))
        decimals = shape.decimals[v] if shape.decimals else g.decimals
        row = {"statistic": "median [IQR]", "cells": cells, "decimals": decimals}
        row.update({"p": None, "test": None, "why_no_test": "no rank test in this version"})
        return {"variable": name, "level": None, **row}
    moment_cells = []
    present_n = []
    for c in order:
        shown = exact_int(opened["mean_shown"][c, v])
        count = _masked(opened["cells_shown"][c, block.start], opened["cells"][c, block.start])[0]
        mean = float(opened["mean"][c, v]) if shown else None
        variance = None
        if shown and count and count > 1:
            variance = max(0.0, float(opened["variance"][c, v])) * count / (count - 1)
        present_n.append((count, mean, variance))
        sd = None if variance is None else math.sqrt(variance)
        moment_cells.append({"mean": mean, "sd": sd})
    if shape.decimals:
        decimals = shape.decimals[v]
    else:
        shown_sds = [cell["sd"] for cell in moment_cells if cell["sd"] is not None]
        decimals = decimals_for(shown_sds[0] if shown_sds else None)
    row = {"statistic": "mean (SD)", "cells": moment_cells, "decimals": decimals}
    if shape.grouped:
        row.update(continuous_test(present_n[1:]))
    return {"variable": name, "level": None, **row}


def _grid_value(point: float, index: int, bins: int) -> float | str:
    """A quartile's grid point, or "below"/"above" the grid's range."""
    if index == 0:
        return "below"
    if index == bins + 1:
        return "above"
    return point
