"""The number of distinct patients over hospitals from their keyed link tokens (per cell
of a public layout), and the number seen at more than one, inside MPC, without any
equality ever being opened.

Each party p inputs its counts u_p (per cell) of cohort patients without a link id, a
vector x_p of `bound` field elements: the distinct tokens of its linked cohort patients,
padded with values no token and no other party's padding takes, and per slot a 0/1 row
h_pj of the cells (the patient's cell at this hospital; all zero for padding). For a
slot j of party p and an earlier party q < p,

    m_pqj = [ prod_i (x_pj - x_qi) == 0 ],

one zero test per slot and earlier party, since in a prime field a product is 0 only
when a factor is: x_pj is among party q's tokens. The products cost bound^2
multiplications per pair of parties (log2(bound) rounds, all pairs in one batch) and
the zero tests one batch of `SecureOps.is_zero`. With k_pj = sum_q m_pqj the number of
earlier parties holding the slot's token (0 for padding):

    distinct (per cell) = sum_p u_p + sum_(p, j) [k_pj == 0] h_pj
    shared              = #{(p, j): k_pj == 1}

A patient is counted once, in the cell her record has at the first hospital (in party
order) that has her; a token at M >= 2 hospitals has exactly one slot with one earlier
holder. [k == 0] and [k == 1] come from the m bits by products (a "none / exactly one so
far" recursion over q), not comparisons.

Cost against the alternatives (docs/analyses.md, "Deduplicated count"): all pairwise
equality tests would cost n(n-1)/2 bound^2 comparisons of ~70-bit values, each dozens
of products; a secure sort of the n bound tokens costs O(N log^2 N) comparisons. The
products here are single multiplications.
"""

from __future__ import annotations

from collections.abc import Sequence

from smpc_ehr.securemath.ops import Secret, SecureOps


def product_along_rows(ops: SecureOps, rows: Secret) -> Secret:
    """The product of each row of a secret 2-d array (exact in the field): halves
    multiplied together, ceil(log2(width)) rounds."""
    width = rows.shape[1]
    while width > 1:
        half = width // 2
        paired = ops.mul(rows[:, :half], rows[:, half : 2 * half])
        rows = paired if width % 2 == 0 else ops.concatenate([paired, rows[:, 2 * half :]], axis=1)
        width = rows.shape[1]
    return ops.reshape(rows, (rows.shape[0],))


def earlier_membership(ops: SecureOps, tokens: Sequence[Secret]) -> list[list[Secret]]:
    """m[p][q] (for q < p): per slot of party p, the secret bit [its token is among
    party q's], all pairs in one batch of products and one batch of zero tests."""
    bound = tokens[0].shape[0]
    blocks = []
    for p in range(1, len(tokens)):
        column = ops.reshape(tokens[p], (bound, 1))
        for q in range(p):
            row = ops.reshape(tokens[q], (1, bound))
            blocks.append(ops.sub(column, row))  # (bound, bound): x_pj - x_qi
    products = product_along_rows(ops, ops.concatenate(blocks, axis=0))
    zero = ops.is_zero(products)
    bits: list[list[Secret]] = [[] for _ in tokens]
    at = 0
    for p in range(1, len(tokens)):
        for _ in range(p):
            bits[p].append(zero[at : at + bound])
            at += bound
    return bits


def distinct_and_shared(
    ops: SecureOps,
    unlinked: Sequence[Secret],
    tokens: Sequence[Secret],
    cells: Sequence[Secret],
) -> tuple[Secret, Secret]:
    """(distinct patients per cell, shape (k,); patients at more than one hospital,
    shape (1,)), as secret integers, from every party's unlinked counts (k,), padded
    tokens (bound,) and cell rows (bound, k) (module doc)."""
    members = earlier_membership(ops, tokens)
    width = cells[0].shape[1]
    distinct = ops.add(ops.sum_vectors(list(unlinked)), ops.sum(cells[0], axis=0))
    shared = None
    for p in range(1, len(tokens)):
        ones = ops.add_public(ops.mul_public(members[p][0], 0), 1)
        none_yet, one_yet = ops.sub(ones, members[p][0]), members[p][0]
        for bit in members[p][1:]:
            not_bit = ops.sub(ones, bit)
            one_yet = ops.add(ops.mul(one_yet, not_bit), ops.mul(none_yet, bit))
            none_yet = ops.mul(none_yet, not_bit)
        first = ops.stack([none_yet] * width, axis=1)  # (bound, k)
        distinct = ops.add(distinct, ops.sum(ops.mul(first, cells[p]), axis=0))
        column = ops.reshape(one_yet, (one_yet.shape[0], 1))
        here = ops.sum(column, axis=0)
        shared = here if shared is None else ops.add(shared, here)
    if shared is None:  # one party: nobody is shared
        shared = ops.mul_public(ops.sum(ops.reshape(unlinked[0], (width, 1)), axis=0), 0)
    return distinct, shared
