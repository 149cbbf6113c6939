"""The public layout of a Table 1 (columns, rows, the party's input vector) and the
party's local step that fills it.

Columns: one per level of `group` (sex: F and M; others: every level), then the
overall column (patients with a group level); without `group`, the overall column
alone. Patients without a group level (sex U, a missing 0/1 value) are "left out".

Rows: per continuous variable two cells, patients with a value ("present") and
without ("missing"); per categorical variable one cell per level, then "missing".
The cells of one variable partition the column's patients (a block).

The party's input is one vector of whole numbers and fixed-point moments (all
secret-shared as fixed point, `moments.party_arrays`): the patients per unit (a
group, or everyone without `group`) and the left-out count; the cells per unit; per
column and continuous variable count, mean, population variance, [all values 0/1]
and count of ones (`moments.local_moments`, `local_binary`); per non-normal variable
and column, n and, per quartile, p n - 4 cum_k at the grid points laid out S x S
(as the quantiles analysis, with 4 in place of its 10000: q is a quarter).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from smpc_ehr.analyses.base import Params
from smpc_ehr.analyses.common.grid import Grid, block_size, grid
from smpc_ehr.analyses.common.moment_release import stratum_masks
from smpc_ehr.analyses.common.moments import local_binary, local_moments
from smpc_ehr.analyses.common.variables import (
    category_index,
    category_levels,
    numeric_values,
    select_cohort,
)
from smpc_ehr.data.records import PartyData
from smpc_ehr.errors import TemplateError

QUARTERS = (1, 2, 3)
"""The quartiles as p / 4: q1, median, q3."""
MOMENT_FIELDS = 5
"""count, mean, population variance, [all 0/1], count of ones."""
MISSING = "missing"
PRESENT = "present"
MAX_DECIMALS = 6


@dataclass(frozen=True)
class Block:
    """The cells of one variable: its name, kind ("continuous" or "categorical") and
    row labels (the last is MISSING), starting at row `start`."""

    name: str
    kind: str
    labels: tuple[str, ...]
    start: int

    @property
    def stop(self) -> int:
        return self.start + len(self.labels)


def group_levels(group: str, params: Params) -> tuple[str, ...]:
    """The group columns: sex compares F and M (U is left out); others all levels."""
    return ("F", "M") if group == "sex" else category_levels(group, params)


@dataclass(frozen=True)
class Layout:
    """The table's public shape, from the parameters alone (the same at every party)."""

    group: str | None
    groups: tuple[str, ...]
    variables: tuple[str, ...]
    nonnormal: tuple[str, ...]
    grids: tuple[Grid, ...]
    categorical: tuple[tuple[str, tuple[str, ...]], ...]
    decimals: tuple[int, ...] | None

    @property
    def grouped(self) -> bool:
        return self.group is not None

    @property
    def units(self) -> int:
        """Columns the parties count directly: the groups, or the overall one."""
        return max(1, len(self.groups))

    @property
    def columns(self) -> int:
        """Unit columns, then the overall one when grouped."""
        return self.units + 1 if self.grouped else 1

    @cached_property
    def blocks(self) -> tuple[Block, ...]:
        out, start = [], 0
        for name in self.variables:
            out.append(Block(name, "continuous", (PRESENT, MISSING), start))
            start += 2
        for name, levels in self.categorical:
            out.append(Block(name, "categorical", (*levels, MISSING), start))
            start += len(levels) + 1
        return tuple(out)

    @property
    def rows(self) -> int:
        return self.blocks[-1].stop

    @property
    def missing_mask(self) -> np.ndarray:
        """1.0 at every block's MISSING row."""
        mask = np.zeros(self.rows)
        mask[[b.stop - 1 for b in self.blocks]] = 1.0
        return mask

    @property
    def normal_mask(self) -> np.ndarray:
        """1.0 at the continuous variables shown as mean (SD)."""
        return np.array([float(v not in self.nonnormal) for v in self.variables])

    @property
    def sides(self) -> tuple[int, ...]:
        return tuple(block_size(g.bins) for g in self.grids)

    @property
    def sizes_len(self) -> int:
        return self.units + 1  # the units, then the left-out count

    @property
    def cells_len(self) -> int:
        return self.units * self.rows

    @property
    def moments_len(self) -> int:
        return MOMENT_FIELDS * self.columns * len(self.variables)

    def quantile_len(self, q: int) -> int:
        return len(QUARTERS) * self.sides[q] ** 2

    @property
    def length(self) -> int:
        grids = sum(self.quantile_len(q) for q in range(len(self.grids))) * self.columns
        return self.sizes_len + self.cells_len + self.moments_len + grids


def layout(params: Params) -> Layout:
    """The layout the parameters describe; TemplateError says what to change."""
    variables = tuple(params.get("variables") or ())
    nonnormal = tuple(params.get("nonnormal") or ())
    categorical = tuple(params.get("categorical") or ())
    group = params.get("group")
    if not variables and not categorical:
        raise TemplateError("give at least one of variables (continuous) or categorical")
    for kind, names in (("variables", variables), ("categorical", categorical)):
        if len(set(names)) != len(names):
            raise TemplateError(f"{kind} lists a column twice")
    if set(variables) & set(categorical):
        raise TemplateError("a column is either in variables or in categorical, not both")
    if not set(nonnormal) <= set(variables):
        extra = ", ".join(sorted(set(nonnormal) - set(variables)))
        raise TemplateError(f"nonnormal must be columns of variables; not there: {extra}")
    if group is not None and group in categorical:
        raise TemplateError(f"{group!r} is the group: it cannot also be a categorical row")
    bounds = list(params.get("grid") or ())
    if len(bounds) != 3 * len(nonnormal):
        raise TemplateError(
            f"grid needs low, high and step for each nonnormal variable, in order: "
            f"{3 * len(nonnormal)} numbers, got {len(bounds)}"
        )
    grids = tuple(
        grid({"low": bounds[3 * i], "high": bounds[3 * i + 1], "step": bounds[3 * i + 2]})
        for i in range(len(nonnormal))
    )
    decimals = params.get("decimals")
    if decimals is not None:
        if len(decimals) != len(variables) or any(
            d != int(d) or not 0 <= d <= MAX_DECIMALS for d in decimals
        ):
            raise TemplateError(
                f"decimals needs one whole number 0..{MAX_DECIMALS} per variable, in order"
            )
        decimals = tuple(int(d) for d in decimals)
    return Layout(
        group,
        group_levels(group, params) if group else (),
        variables,
        nonnormal,
        grids,
        tuple((name, category_levels(name, params)) for name in categorical),
        decimals,
    )


def local_table(data: PartyData, params: Params, shape: Layout) -> np.ndarray:
    """This party's input vector (module docstring), from its cohort in plaintext."""
    cohort = select_cohort(data, params)
    if shape.grouped:
        assert shape.group is not None
        masks = [m for m in stratum_masks(data, params, cohort, shape.group, shape.groups)]
        everyone = np.logical_or.reduce([m for m in masks if m is not None])
        columns: list[np.ndarray] = [*(m for m in masks if m is not None), everyone]
    else:
        columns = [np.ones(cohort.size, dtype=bool)]
    units = columns[: shape.units]
    sizes = [int(np.count_nonzero(m)) for m in units]
    sizes.append(cohort.size - sum(sizes))
    values = {name: numeric_values(data, name, cohort) for name in shape.variables}
    levels = {name: category_index(data, name, cohort, params) for name, _ in shape.categorical}
    cells = np.zeros((shape.units, shape.rows))
    for u, mask in enumerate(units):
        for block in shape.blocks:
            if block.kind == "continuous":
                missing = int(np.count_nonzero(np.isnan(values[block.name][mask])))
                cells[u, block.start : block.stop] = (np.count_nonzero(mask) - missing, missing)
            else:
                index = levels[block.name][mask]
                width = len(block.labels) - 1
                counts = np.bincount(index[index >= 0], minlength=width)
                cells[u, block.start : block.stop] = (*counts, np.count_nonzero(index < 0))
    moments = np.zeros((MOMENT_FIELDS, shape.columns, len(shape.variables)))
    for c, mask in enumerate(columns):
        for v, name in enumerate(shape.variables):
            chosen = values[name][mask]
            moments[:, c, v] = (*local_moments(chosen), *local_binary(chosen))
    quantiles = [
        cumulative_differences(values[name][mask], g, side)
        for name, g, side in zip(shape.nonnormal, shape.grids, shape.sides, strict=True)
        for mask in columns
    ]
    return np.concatenate([np.array(sizes, float), cells.ravel(), moments.ravel(), *quantiles])


def cumulative_differences(values: np.ndarray, g: Grid, side: int) -> np.ndarray:
    """Per quartile p / 4, p n - 4 #(x <= g_k) at the grid points (padded to S x S with
    points holding every value), n the non-missing values: [>= 1] exactly below the
    quartile's grid point."""
    known = values[~np.isnan(values)]
    cum = np.cumsum(np.bincount(g.bin_numbers(known), minlength=g.bins + 2))[: g.bins + 1]
    padded = np.full(side * side, float(known.size))
    padded[: cum.size] = cum
    return np.concatenate([p * known.size - 4 * padded for p in QUARTERS])
