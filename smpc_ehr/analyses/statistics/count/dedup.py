"""The deduplicated count (`dedup = yes`): distinct patients over hospitals by their
keyed link tokens, and the patients seen at more than one, each released only at or
above the small-cell threshold, decided inside MPC.

Local step: the party's cohort (the same filter as the plain count), its count c of
cohort patients with each link token once (two records of one patient at one hospital
are one patient: a party knows its own duplicates), and the distinct nonzero tokens
of the cohort. More tokens than `dedup_bound` (a constant of the template, never
derived from the data) is a problem decided jointly (`UnusableValues`): the job is
refused without naming the hospital. A patient without a link id is counted once and
never matched.

Secure step (`securemath.distinct`): every party inputs c and its tokens padded to
`dedup_bound` with values above every token (PAD_BASE + party * bound + slot, so no
two paddings are equal either); the distinct count and the shared count are compared
with the threshold; only the bits and the masked totals are opened. MPyC only: the
zero test of a product of differences needs a prime field (CrypTen's Z_2^64 has zero
divisors), and a job on CrypTen is refused before it starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from smpc_ehr.analyses.base import NamedProgram, NamedSecrets, Params
from smpc_ehr.analyses.common.local_checks import UnusableValues
from smpc_ehr.analyses.common.text import count_text
from smpc_ehr.analyses.common.variables import cohort_filter
from smpc_ehr.data.cohort import cohort_members
from smpc_ehr.data.linkage import TOKEN_BITS
from smpc_ehr.data.records import PartyData
from smpc_ehr.errors import DataError, TemplateError
from smpc_ehr.securemath.constants import COUNT_INPUT_BITS
from smpc_ehr.securemath.distinct import distinct_and_shared
from smpc_ehr.securemath.ops import SecureOps

PAD_BASE = 2**TOKEN_BITS + 1
"""The first padding value: above every token (tokens are 1..2^TOKEN_BITS)."""
CELLS = ("count", "shared")
"""What a deduplicated count releases, in the order of its two cells."""


def wanted(params: Params) -> bool:
    """Whether the job asks for a deduplicated count."""
    return params.get("dedup") == "yes"


def validate(params: Params) -> None:
    """Refuse what a deduplicated count does not take in this version."""
    if not wanted(params):
        return
    if params.get("by"):
        raise TemplateError(
            "dedup = yes does not take 'by' in this version (one hospital's sex and age band "
            "per shared patient is not chosen yet): ask for the total"
        )
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
    """A party's private input: its cohort count and its distinct link tokens."""

    count: int
    tokens: tuple[int, ...]
    bound: int


def local_input(data: PartyData, params: Params) -> DedupInput:
    """The cohort's count (each linked patient once) and its distinct tokens."""
    if data.link_token is None:
        raise DataError(
            "this hospital has no keyed link ids (a link_id column or link_column/"
            "link_system, and [party] linkage_key): it cannot take part in a "
            "deduplicated count"
        )
    members, _ = cohort_members(data, cohort_filter(params))
    tokens = np.asarray(data.link_token)[members]
    linked = np.unique(tokens[tokens != 0])
    unlinked = int(np.count_nonzero(tokens == 0))
    bound = int(params["dedup_bound"])
    if len(linked) > bound:
        raise UnusableValues(
            f"the cohort has {len(linked)} linked patients here, more than the template's "
            f"dedup_bound of {bound}: the deduplicated count is refused jointly"
        )
    return DedupInput(unlinked + len(linked), tuple(int(t) for t in linked), bound)


def secure_program(local: DedupInput, threshold: int) -> NamedProgram:
    """Distinct and shared totals, each with its bit [total >= threshold]."""

    async def program(ops: SecureOps) -> NamedSecrets:
        bound = local.bound
        start = PAD_BASE + ops.my_index * bound
        padded = [*local.tokens, *range(start + len(local.tokens), start + bound)]
        counts = ops.input_ints([local.count], COUNT_INPUT_BITS)
        tokens = ops.input_field_elements(padded, PAD_BASE + ops.n_parties * bound)
        distinct, shared = distinct_and_shared(ops, counts, tokens)
        totals = ops.concatenate([distinct, shared])
        released = ops.ge_public(totals, threshold)
        return {"released": released, "counts": ops.mul(released, totals)}

    return program


def finalize(totals: list[int | None], threshold: int) -> dict[str, Any]:
    """`result.count` the distinct patients and `result.shared` those at more than one
    hospital, each None when suppressed."""
    count, shared = totals
    return {
        "count": count,
        "suppressed": count is None,
        "shared": shared,
        "dedup": True,
        "threshold": threshold,
    }


def render(result: dict[str, Any]) -> str:
    """The plain count's lines with the shared patients added under the distinct ones."""
    threshold = result.get("threshold", 0)
    shared = {"count": result["shared"], "suppressed": result["shared"] is None}
    return (
        f"distinct patients: {count_text(result, threshold)}\n"
        f"seen at more than one hospital: {count_text(shared, threshold)}\n"
        f"small-cell threshold: {threshold}"
    )
