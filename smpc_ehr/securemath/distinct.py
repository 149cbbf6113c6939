"""The number of distinct patients over hospitals from their keyed link tokens, and the
number seen at more than one, inside MPC, without any equality ever being opened.

Each party p inputs its count c_p of cohort patients (each of its patients once) and a
vector x_p of `bound` field elements: the distinct tokens of those of them with a link
id, padded with values no token and no other party's padding takes. For a slot j of
party p and an earlier party q < p,

    m_pqj = [ prod_i (x_pj - x_qi) == 0 ],

one zero test per slot and earlier party, since in a prime field a product is 0 only
when a factor is: x_pj is among party q's tokens. The products cost bound^2
multiplications per pair of parties (log2(bound) rounds, all pairs in one batch) and
the zero tests one batch of `SecureOps.is_zero`. Then, with k_pj = sum_q m_pqj the
number of earlier parties holding the slot's token (0 for padding),

    distinct = sum_p c_p - #{(p, j): k_pj >= 1}    (each later occurrence removed once)
    shared   = #{(p, j): k_pj == 1}                (a token at M >= 2 hospitals has
                                                    exactly one slot with one earlier)

[k == 0] and [k == 1] come from the m bits by products (an "at most one so far"
recursion over q), not comparisons. A patient without a link id is in c_p with no
slot: counted once, never matched.

Cost against the alternatives (docs/statistics.md, "Deduplicated count"): all pairwise
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
    ops: SecureOps, counts: Sequence[Secret], tokens: Sequence[Secret]
) -> tuple[Secret, Secret]:
    """(distinct patients, patients at more than one hospital), as secret integers of
    shape (1,), from every party's count (shape (1,)) and padded tokens (module doc)."""
    members = earlier_membership(ops, tokens)
    later = []  # per party p >= 1: (none of the earlier parties, exactly one of them)
    for p in range(1, len(tokens)):
        none_yet = ops.sub(ops.add_public(ops.mul_public(members[p][0], 0), 1), members[p][0])
        one_yet = members[p][0]
        for bit in members[p][1:]:
            not_bit = ops.sub(ops.add_public(ops.mul_public(bit, 0), 1), bit)
            one_yet = ops.add(ops.mul(one_yet, not_bit), ops.mul(none_yet, bit))
            none_yet = ops.mul(none_yet, not_bit)
        later.append((none_yet, one_yet))
    total = ops.sum_vectors(list(counts))
    if not later:
        return total, ops.mul_public(total, 0)
    slots = sum(none.shape[0] for none, _ in later)
    none_all = ops.reshape(ops.concatenate([none for none, _ in later]), (slots, 1))
    one_all = ops.reshape(ops.concatenate([one for _, one in later]), (slots, 1))
    repeated = ops.sub(ops.add_public(ops.mul_public(total, 0), slots), ops.sum(none_all, axis=0))
    return ops.sub(total, repeated), ops.sum(one_all, axis=0)
