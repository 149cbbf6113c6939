"""The deduplicated count (`dedup = yes`): distinct patients over hospitals by their
keyed link tokens, optionally per cell of `by`, and the patients seen at more than one
hospital, each released only at or above the small-cell threshold, decided inside MPC.

Local step: the party's cohort (the same filter as the plain count); for the cohort
patients with a link id, their distinct tokens, each with its cell of `by` (two records
of one patient at one hospital are one patient: a party knows its own duplicates; the
cell is that of the first record, in the party's patient order); for those without, the
counts per cell (counted once, never matched). More tokens than `dedup_bound` (a
constant of the template, never derived from the data) is a problem decided jointly
(`UnusableValues`): the job is refused without naming the hospital.

Secure step (`securemath.distinct`): every party inputs its unlinked counts, per slot
its cell (a 0/1 row, zero for padding), the coefficients of its token polynomial
prod (x - t) (padded to degree `dedup_bound`) and the powers of its tokens padded to
`dedup_bound` slots with values above every token (PAD_BASE + party x bound + slot, so
no two paddings are equal either). A patient seen at several hospitals is counted in
the cell she has at the first of them in party order (the roster's order of the job's
hospitals). The distinct counts per cell and the shared count are compared with the
threshold; only the bits and the masked totals are opened.

Differences with the plain count (`releasable`): the analyst may also run the plain
count of the same cohort, and plain - distinct = the records beyond one per patient
(D, per cell), and D - shared = the patients at three or more hospitals counted k - 2
times (E). Both are computed inside MPC too: a cell's distinct count is released only if
its D is 0 or at least the threshold (or at most minus it: a patient whose cell differs
between hospitals), and the shared count only if E is 0 or at least the threshold, so
that no subtraction of released numbers gives a count between 1 and threshold - 1.

MPyC only: a token
polynomial is 0 only at its tokens in a prime field (CrypTen's Z_2^64 has zero
divisors), and a job on CrypTen is refused before it starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from smpc_ehr.analyses.base import NamedProgram, NamedSecrets, Params
from smpc_ehr.analyses.common.local_checks import UnusableValues
from smpc_ehr.analyses.common.text import count_text, render_generic
from smpc_ehr.analyses.common.variables import cohort_filter
from smpc_ehr.data.cohort import cell_labels, member_cells
from smpc_ehr.data.linkage import TOKEN_BITS
from smpc_ehr.data.records import PartyData
from smpc_ehr.errors import DataError, TemplateError
from smpc_ehr.securemath.constants import COUNT_INPUT_BITS
from smpc_ehr.securemath.distinct import distinct_and_shared, power_rows, token_polynomial
from smpc_ehr.securemath.ops import Secret, SecureOps

PAD_BASE = 2**TOKEN_BITS + 1
"""The first padding value: above every token (tokens are 1..2^TOKEN_BITS)."""


def wanted(params: Params) -> bool:
    """Whether the job asks for a deduplicated count."""
    return params.get("dedup") == "yes"


def validate(params: Params) -> None:
    """Refuse what a deduplicated count does not take in this version."""
    if not wanted(params):
        return
    if params.get("epsilon") is not None:
        raise TemplateError("dedup = yes is exact only in this version: leave epsilon out")
    if int(params.get("dedup_bound") or 0) < 1:
        raise TemplateError("dedup = yes needs the template constant dedup_bound >= 1")


def validate_backend(params: Params, backend: str) -> None:
    """A deduplicated count runs on MPyC only (its zero tests need a prime field)."""
    if wanted(params) and backend != "mpyc":
        raise TemplateError(
            f"dedup = yes runs on the mpyc backend only (its zero tests need a prime field; "
            f"{backend} computes modulo 2^64); run it with --backend mpyc"
        )


@dataclass(frozen=True)
class DedupInput:
    """A party's private input: its distinct link tokens with each one's cell, its
    unlinked cohort patients per cell and all its cohort patients per cell (the plain
    count's input; `cells` cells in all)."""

    tokens: tuple[int, ...]
    token_cells: tuple[int, ...]
    unlinked: tuple[int, ...]
    plain: tuple[int, ...]
    cells: int
    bound: int


def local_input(data: PartyData, params: Params, by: tuple[str, ...]) -> DedupInput:
    """The cohort's distinct tokens and their cells, and its unlinked patients per cell."""
    if data.link_token is None:
        raise DataError(
            "this hospital has no keyed link ids (a link_id column or link_column/"
            "link_system, and [party] linkage_key): it cannot take part in a "
            "deduplicated count"
        )
    cells = len(cell_labels(by))
    members, member_cell = member_cells(data, cohort_filter(params), by)
    tokens = np.asarray(data.link_token)[members]
    linked = tokens != 0
    unique, first = np.unique(tokens[linked], return_index=True)  # first record of each
    bound = int(params["dedup_bound"])
    if len(unique) > bound:
        raise UnusableValues(
            f"the cohort has {len(unique)} linked patients here, more than the template's "
            f"dedup_bound of {bound}: the deduplicated count is refused jointly"
        )
    unlinked = np.bincount(member_cell[~linked], minlength=cells)
    plain = np.bincount(member_cell, minlength=cells)
    return DedupInput(
        tuple(int(t) for t in unique),
        tuple(int(c) for c in member_cell[linked][first]),
        tuple(int(u) for u in unlinked),
        tuple(int(n) for n in plain),
        cells,
        bound,
    )


def secure_program(local: DedupInput, threshold: int) -> NamedProgram:
    """Distinct totals per cell, then the shared total, each with its bit
    [total >= threshold]."""

    async def program(ops: SecureOps) -> NamedSecrets:
        bound, width = local.bound, local.cells
        start = PAD_BASE + ops.my_index * bound
        padded = [*local.tokens, *range(start + len(local.tokens), start + bound)]
        rows = np.zeros((bound, width), dtype=np.int64)
        rows[np.arange(len(local.token_cells)), list(local.token_cells)] = 1
        unlinked = ops.input_ints(list(local.unlinked), COUNT_INPUT_BITS)
        cells = [
            ops.reshape(flat, (bound, width))
            for flat in ops.input_ints([int(v) for v in rows.reshape(-1)], COUNT_INPUT_BITS)
        ]
        modulus = ops.field_modulus
        if PAD_BASE + ops.n_parties * bound >= modulus:
            raise ValueError("the tokens and their padding do not fit this job's field")
        mine = power_rows(padded, modulus, bound) + token_polynomial(local.tokens, modulus, bound)
        powers, polynomials = [], []
        for flat in ops.input_field_elements(mine, modulus):
            powers.append(ops.reshape(flat[: bound * (bound + 1)], (bound, bound + 1)))
            polynomials.append(flat[bound * (bound + 1) :])
        distinct, shared = distinct_and_shared(ops, unlinked, powers, polynomials, cells)
        plain = ops.sum_vectors(ops.input_ints(list(local.plain), COUNT_INPUT_BITS))
        totals = ops.concatenate([distinct, shared])
        released = releasable(ops, distinct, shared, plain, threshold)
        return {"released": released, "counts": ops.mul(released, totals)}

    return program


def releasable(
    ops: SecureOps, distinct: Secret, shared: Secret, plain: Secret, threshold: int
) -> Secret:
    """The bits [distinct cell may be shown] per cell, then [shared may be shown]: at
    least the threshold, and no difference with the plain count (module doc) between 1
    and threshold - 1 in size. One batch of comparisons."""
    k = distinct.shape[0]
    extra = ops.sub(plain, distinct)  # D per cell
    beyond = ops.sub(ops.sum(ops.reshape(extra, (k, 1)), axis=0), shared)  # E
    less = ops.mul_public(extra, -1)

    def at_least_one(x: Secret) -> Secret:  # [x >= 1] as [x + t - 1 >= t]
        return ops.add_public(x, threshold - 1)

    parts = [distinct, shared, at_least_one(extra), extra, at_least_one(less), less]
    checks = ops.ge_public(ops.concatenate([*parts, at_least_one(beyond), beyond]), threshold)
    start = k + 1  # then [D >= 1], [D >= t], [-D >= 1], [-D >= t] (k each), [E >= 1], [E >= t]
    pos_one, pos_t = checks[start : start + k], checks[start + k : start + 2 * k]
    neg_one, neg_t = checks[start + 2 * k : start + 3 * k], checks[start + 3 * k : start + 4 * k]
    e_one, e_t = checks[start + 4 * k : start + 4 * k + 1], checks[start + 4 * k + 1 :]
    small = ops.add(ops.sub(pos_one, pos_t), ops.sub(neg_one, neg_t))
    small_beyond = ops.sub(e_one, e_t)
    allowed = ops.add_public(ops.mul_public(ops.concatenate([small, small_beyond]), -1), 1)
    return ops.mul(checks[:start], allowed)  # [total >= t] and no small difference


def finalize(totals: list[int | None], by: tuple[str, ...], threshold: int) -> dict[str, Any]:
    """`result.count` the distinct patients (or, with `by`, `result.cells` of them) and
    `result.shared` those at more than one hospital, each None when suppressed."""
    *distinct, shared = totals
    common = {"shared": shared, "dedup": True, "threshold": threshold}
    if not by:
        return {"count": distinct[0], "suppressed": distinct[0] is None, **common}
    cells = [
        {**label, "count": count, "suppressed": count is None}
        for label, count in zip(cell_labels(by), distinct, strict=True)
    ]
    return {"by": list(by), "cells": cells, **common}


def render(result: dict[str, Any]) -> str:
    """The plain count's table (or line) of distinct patients, with the shared patients
    added under it."""
    threshold = result.get("threshold", 0)
    shared = {"count": result["shared"], "suppressed": result["shared"] is None}
    plain = {k: v for k, v in result.items() if k not in ("shared", "dedup")}
    lines = render_generic(plain).splitlines()
    if "cells" not in result:
        lines[0] = lines[0].replace("patients:", "distinct patients:", 1)
    lines.insert(-1, f"seen at more than one hospital: {count_text(shared, threshold)}")
    return "\n".join(lines)
