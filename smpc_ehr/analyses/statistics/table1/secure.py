"""The Table 1's secure program: every count, mean and quartile is pooled inside MPC,
and which of them may be opened is decided there too (nothing below the threshold is
opened, not even as a product that could be recombined).

The suppression rule (the package docstring states what it guarantees). A count is
"small" from 1 to t - 1; 0 is shown (as under the CMS cell-size policy: a 0 lets
nothing be subtracted down to a patient, and hiding it would hide a female-only
cohort's count of women). Complements are chosen among counts of at least t (a zero
is made larger than every count for the choice: hiding it would protect nothing).
1. Groups: a group's n is shown unless small; if one is hidden, the smallest shown
   one is hidden too (`cells.complementary`), and a hidden group's column is hidden
   whole. The overall n and the left-out count are shown unless small.
2. Within a shown column, per variable (its levels and "missing", a partition of the
   column's n): a cell is shown unless small; if one is hidden, the smallest shown one
   is hidden too (`complementary`), so the hidden cells hold at least the threshold
   together and the column's n minus its shown cells is their sum.
3. The overall column (grouped tables): a row's overall cell is hidden where a shown
   group hides that row's cell (the overall minus the other groups would give it),
   where the hidden groups' cells of that row add up to 1 to t - 1 (the overall minus
   the shown groups would give that sum) or where it is below the threshold itself; if
   that leaves exactly one hidden cell of the variable in the overall column, its
   smallest shown cell is hidden too.
4. A mean and SD are shown where the column's patients with a value are shown (the
   present cell, rule 2 or 3: a mean of whole numbers gives its n by its continued
   fraction, and the column's n minus it the missing count) and the binary rule holds
   (`moments.binary_rule`); the overall one only if every group's is shown (the
   overall n x mean minus the groups' would give a hidden group's sum: with its n, its
   mean, and for a 0/1 variable its count of ones). A quartile is shown where the
   column is shown and at least the threshold of patients lie either side of it (the
   quantiles analysis's rule).
"""

from __future__ import annotations

import numpy as np

from smpc_ehr.analyses.base import NamedProgram, NamedSecrets, Output
from smpc_ehr.analyses.common.cells import complementary, first_smallest
from smpc_ehr.analyses.common.grid import crossing_indices
from smpc_ehr.analyses.common.moments import (
    binary_rule,
    party_arrays,
    pool_moments,
    pooled_weights,
)
from smpc_ehr.analyses.statistics.table1.layout import MOMENT_FIELDS, QUARTERS, Layout
from smpc_ehr.securemath.boolean import all_of
from smpc_ehr.securemath.ops import Secret, SecureOps


def table1_outputs(shape: Layout) -> tuple[Output, ...]:
    """Per column (units, then overall) the bit and masked n; the left-out count's bit
    and value; per column and row the bits and masked cells; per column and continuous
    variable the mean bits, masked means and population variances; per non-normal
    variable, column and quartile the bits and masked grid indices."""
    c, v, q = shape.columns, len(shape.variables), len(shape.nonnormal)
    out = [
        Output("n_shown", (c,)),
        Output("n", (c,)),
        Output("left_out_shown", (1,)),
        Output("left_out", (1,)),
        Output("cells_shown", (c, shape.rows)),
        Output("cells", (c, shape.rows)),
    ]
    if v:
        out += [Output(name, (c, v)) for name in ("mean_shown", "mean", "variance")]
    if q:
        out += [Output(name, (q, c, len(QUARTERS))) for name in ("quartile_shown", "quartile")]
    return tuple(out)


def _repeat(ops: SecureOps, one: Secret, times: int) -> Secret:
    """A (1,) secret as a (times,) vector."""
    return ops.reshape(ops.stack([one] * times), (times,))


def _not(ops: SecureOps, bits: Secret) -> Secret:
    return ops.add_public(ops.mul_public(bits, -1.0), 1.0)


def _primary(ops: SecureOps, counts: Secret, big: Secret, threshold: int) -> tuple[Secret, Secret]:
    """Per count the bit [count >= t or count = 0] and the value its complement is
    chosen by (a zero made larger than every count: hiding it protects nothing). One
    batch of comparisons."""
    size = counts.shape[0]
    checks = ops.ge_public(
        ops.concatenate([counts, ops.add_public(ops.mul_public(counts, -1.0), threshold)]),
        threshold,
    )
    zero = checks[size:]
    values = ops.add(counts, ops.mul(zero, _repeat(ops, big, size)))
    return ops.add(checks[:size], zero), values


def _within(ops: SecureOps, shape: Layout, shown: Secret, values: Secret) -> Secret:
    """Rule 2 on the cells of every unit (flat units x rows)."""
    parts = []
    for u in range(shape.units):
        for block in shape.blocks:
            lo, hi = u * shape.rows + block.start, u * shape.rows + block.stop
            parts.append(complementary(ops, shown[lo:hi], values[lo:hi])[0])
    return ops.concatenate(parts)


def _small_in_hidden_groups(
    ops: SecureOps, groups: Secret, cells: Secret, shape: Layout, threshold: int
) -> Secret:
    """Per row, the bit [1 <= the hidden groups' cells together <= t - 1]: the overall
    cell minus the shown groups' cells would give that sum, so the overall cell is
    hidden then (rule 3). The group bits are made exact first, so that the products are
    whole numbers up to CrypTen's last place; the comparisons have half a unit of margin."""
    units, rows = shape.units, shape.rows
    exact = ops.exact_bits(groups)
    off = ops.concatenate([_repeat(ops, _not(ops, exact[u : u + 1]), rows) for u in range(units)])
    together = ops.sum(ops.reshape(ops.mul(off, cells), (units, rows)), axis=0)
    bits = ops.ge_public(
        ops.concatenate([ops.add_public(together, threshold - 1.0), together]), threshold - 0.5
    )
    return ops.sub(bits[:rows], bits[rows:])


def _overall(
    ops: SecureOps,
    shape: Layout,
    hidden_in_groups: Secret,
    shown: Secret,
    values: Secret,
) -> Secret:
    """Rule 3: the overall column's bits from the per-row count of cells hidden in shown
    groups, its own primary bits and the complement values."""
    hidden = ops.ge_public(hidden_in_groups, 0.5)
    bits = ops.mul(shown, _not(ops, hidden))
    parts = []
    for block in shape.blocks:
        part = bits[block.start : block.stop]
        size = block.stop - block.start
        count = ops.sum(ops.reshape(_not(ops, part), (size, 1)), axis=0)  # (1,)
        # [count >= 1/2] - [count >= 3/2], one batch: exactly one hidden
        at = ops.ge_public(ops.concatenate([count, ops.add_public(count, -1.0)]), 0.5)
        single = ops.sub(at[0:1], at[1:2])
        smallest = first_smallest(ops, values[block.start : block.stop], part)
        parts.append(ops.sub(part, ops.mul(_repeat(ops, single, size), smallest)))
    return ops.concatenate(parts)


def table1_program(local: np.ndarray, shape: Layout, threshold: int) -> NamedProgram:
    """Every party's `layout.local_table` in, `table1_outputs` out (module docstring)."""

    async def program(ops: SecureOps) -> NamedSecrets:
        t = threshold
        shared = party_arrays(ops, local)  # P x length
        joint = ops.sum(shared, axis=0)
        units, rows, cols = shape.units, shape.rows, shape.columns
        at = shape.sizes_len
        sizes = joint[:at]
        cells = joint[at : at + shape.cells_len]
        at += shape.cells_len
        total = ops.sum(ops.reshape(sizes[:units], (units, 1)), axis=0)  # (1,)
        left = sizes[units : units + 1]
        big = ops.add_public(total, 1.0)
        reach, size_values = _primary(ops, ops.concatenate([sizes[:units], total, left]), big, t)
        if shape.grouped:
            groups = complementary(ops, reach[:units], size_values[:units])[0]
            n_bits = ops.concatenate([groups, reach[units : units + 1]])
        else:
            groups = reach[:1]
            n_bits = groups
        left_bit = reach[units + 1 : units + 2]
        primary, values = _primary(ops, cells, big, t)
        group_bits = ops.concatenate([_repeat(ops, groups[u : u + 1], rows) for u in range(units)])
        unit_bits = ops.mul(_within(ops, shape, primary, values), group_bits)
        if shape.grouped:
            overall = ops.sum(ops.reshape(cells, (units, rows)), axis=0)
            hidden = ops.mul(group_bits, _not(ops, unit_bits))
            hidden_rows = ops.sum(ops.reshape(hidden, (units, rows)), axis=0)
            small_sums = _small_in_hidden_groups(ops, groups, cells, shape, t)
            hidden_rows = ops.add(hidden_rows, small_sums)
            o_primary, o_values = _primary(ops, overall, big, t)
            o_bits = ops.mul(
                _overall(ops, shape, hidden_rows, o_primary, o_values),
                _repeat(ops, n_bits[units : units + 1], rows),
            )
            all_cells = ops.concatenate([cells, overall])
            cell_bits = ops.concatenate([unit_bits, o_bits])
        else:
            all_cells, cell_bits = cells, unit_bits
        exact = ops.exact_bits(ops.concatenate([n_bits, left_bit, cell_bits]))
        n_bits, left_bit, cell_bits = exact[:cols], exact[cols : cols + 1], exact[cols + 1 :]
        counts = ops.concatenate(
            [
                ops.concatenate([sizes[:units], total]) if shape.grouped else sizes[:1],
                left,
                all_cells,
            ]
        )
        masked = ops.mul(exact, counts)
        out: NamedSecrets = {
            "n_shown": n_bits,
            "n": masked[:cols],
            "left_out_shown": left_bit,
            "left_out": masked[cols : cols + 1],
            "cells_shown": ops.reshape(cell_bits, (cols, rows)),
            "cells": ops.reshape(masked[cols + 1 :], (cols, rows)),
        }
        v = len(shape.variables)
        if v:
            moments = ops.reshape(
                shared[:, at : at + shape.moments_len], (ops.n_parties, MOMENT_FIELDS, cols * v)
            )
            out.update(_moments(ops, shape, moments, cell_bits, t))
            present = ops.sum(moments[:, 0], axis=0)  # per column and variable
        at += shape.moments_len
        if shape.nonnormal:
            out.update(_quartiles(ops, shape, joint[at:], present, n_bits, t))
        return out

    return program


def _moments(
    ops: SecureOps, shape: Layout, moments: Secret, cell_bits: Secret, threshold: int
) -> NamedSecrets:
    """Rule 4 for means: pooled means and population variances, masked."""
    counts, means, variances, binary, ones = (moments[:, i] for i in range(MOMENT_FIELDS))
    total, weights = pooled_weights(ops, counts)
    pooled = pool_moments(ops, weights, means, None, variances)
    cols, v = shape.columns, len(shape.variables)
    present = [
        cell_bits[c * shape.rows + block.start : c * shape.rows + block.start + 1]
        for c in range(cols)
        for block in shape.blocks[:v]
    ]
    shown = ops.mul(ops.concatenate(present), binary_rule(ops, binary, ones, total, threshold))
    if shape.grouped:  # the overall mean only beside every group's
        groups = shape.units * v
        every = all_of(ops, ops.reshape(shown[:groups], (shape.units, v)))
        shown = ops.concatenate([shown[:groups], ops.mul(shown[groups:], every)])
    bits = ops.exact_bits(ops.mul_public(shown, np.tile(shape.normal_mask, cols)))
    masked = ops.mul(ops.stack([bits, bits]), ops.stack([pooled.mean_a, pooled.comoment]))
    return {
        "mean_shown": ops.reshape(bits, (cols, v)),
        "mean": ops.reshape(masked[0], (cols, v)),
        "variance": ops.reshape(masked[1], (cols, v)),
    }


def _quartiles(
    ops: SecureOps,
    shape: Layout,
    differences: Secret,
    present: Secret,
    n_bits: Secret,
    threshold: int,
) -> NamedSecrets:
    """Rule 4 for quartiles: per non-normal variable and column the grid indices (the
    quantiles analysis's search over `differences`, the joint p N - 4 cum), shown with
    t patients either side (min(p, 4 - p) N >= 4 t, N from `present`, the joint counts
    per column and variable) in a shown column."""
    cols, quarters, v = shape.columns, len(QUARTERS), len(shape.variables)
    blocks, margins, column_bits = [], [], []
    at = 0
    for q, side in enumerate(shape.sides):
        width = side * side
        var = shape.variables.index(shape.nonnormal[q])
        for c in range(cols):
            n = present[c * v + var : c * v + var + 1]
            for p in QUARTERS:
                blocks.append(ops.reshape(differences[at : at + width], (side, side)))
                margins.append(ops.mul_public(n, float(min(p, 4 - p))))
                column_bits.append(n_bits[c : c + 1])
                at += width
    index = crossing_indices(ops, blocks, one=0.5)
    either_side = ops.ge_public(ops.concatenate(margins), 4 * threshold)
    bits = ops.exact_bits(ops.mul(either_side, ops.concatenate(column_bits)))
    shape_out = (len(shape.nonnormal), cols, quarters)
    return {
        "quartile_shown": ops.reshape(bits, shape_out),
        "quartile": ops.reshape(ops.mul(bits, index), shape_out),
    }
