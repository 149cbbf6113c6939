"""The number of distinct patients over hospitals from their keyed link tokens (per cell
of a public layout), and the number seen at more than one, inside MPC, without any
equality ever being opened.

Each party p inputs its counts u_p (per cell) of cohort patients without a link id;
its distinct tokens t_p (those of its linked cohort patients) padded to `bound` slots
x_p with values no token and no other party's padding takes; per slot a 0/1 row h_pj
of the cells (the patient's cell at this hospital; all zero for padding); and two
things it computes in plaintext from its own tokens (`token_polynomial`,
`power_rows`): the coefficients of P_p(x) = prod_(t in t_p) (x - t) mod the field's
prime, padded with zeros to degree `bound` (so the degree hides how many tokens it
has), and the powers x_pj^0 .. x_pj^bound of each slot. In a prime field P_q(x) = 0
exactly when x is one of q's tokens, so for a slot j of party p and an earlier party
q < p

    m_pqj = [ P_q(x_pj) == 0 ] = [ sum_k c_qk x_pj^k == 0 ],

a secret inner product (one resharing per value: one matrix product per party) and one
zero test (`SecureOps.is_zero`), all pairs in one batch. With k_pj = sum_q m_pqj the
number of earlier parties holding the slot's token (0 for padding):

    distinct (per cell) = sum_p u_p + sum_(p, j) [k_pj == 0] h_pj
    shared              = #{(p, j): k_pj == 1}

A patient is counted once, in the cell her record has at the first hospital (in party
order) that has her; a token at M >= 2 hospitals has exactly one slot with one earlier
holder. [k == 0] and [k == 1] come from the m bits by products (a "none / exactly one so
far" recursion over q), not comparisons.

Cost against the alternatives (docs/analyses.md, "Deduplicated count"): all pairwise
equality tests would cost n(n-1)/2 bound^2 comparisons of ~70-bit values, each dozens
of products; a secure sort of the n bound tokens costs O(N log^2 N) comparisons; the
products of all differences x_pj - x_qi (this module's first version) cost
n(n-1)/2 bound^2 multiplications, each resharing its value. Here a party inputs
bound^2 powers once and each membership value costs one resharing: measured 2.5-3x
faster at 3 x 1,000 (docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Sequence

from smpc_ehr.securemath.ops import Secret, SecureOps


def token_polynomial(tokens: Sequence[int], modulus: int, degree: int) -> list[int]:
    """The coefficients (lowest first, zeros up to `degree`) of prod_t (x - t) mod the
    field's `modulus`: 0 exactly at the tokens. In plaintext, by the party that holds the
    tokens; its length hides how many there are."""
    if len(tokens) > degree:
        raise ValueError(f"{len(tokens)} tokens, more than the degree {degree}")
    coefficients = [1]
    for token in tokens:  # multiply by (x - token)
        shifted = [0, *coefficients]
        for k, c in enumerate(coefficients):
            shifted[k] = (shifted[k] - token * c) % modulus
        coefficients = shifted
    return coefficients + [0] * (degree + 1 - len(coefficients))


def power_rows(values: Sequence[int], modulus: int, degree: int) -> list[int]:
    """Row j: values[j]^0 .. values[j]^degree mod `modulus`, flattened (in plaintext,
    by the party that holds the values)."""
    rows = []
    for value in values:
        power = 1
        for _ in range(degree + 1):
            rows.append(power)
            power = power * value % modulus
    return rows


def earlier_membership(
    ops: SecureOps, powers: Sequence[Secret], polynomials: Sequence[Secret]
) -> list[Secret]:
    """Per party p >= 1, the secret bits m[p] of shape (bound, p): [slot j's token is
    among party q's] for each earlier party q, as [P_q(x_pj) == 0], where row j of
    `powers[p]` holds the powers of x_pj and `polynomials[q]` the coefficients of P_q;
    one matrix product per party (one resharing per value) and one batch of zero tests."""
    values = []
    for p in range(1, len(powers)):
        earlier = ops.stack([polynomials[q] for q in range(p)], axis=1)  # (degree + 1, p)
        values.append(ops.reshape(ops.matmul(powers[p], earlier), (-1,)))
    zero = ops.is_zero(ops.concatenate(values))
    bound = powers[0].shape[0]
    bits, at = [], 0
    for p in range(1, len(powers)):
        bits.append(ops.reshape(zero[at : at + bound * p], (bound, p)))
        at += bound * p
    return bits


def distinct_and_shared(
    ops: SecureOps,
    unlinked: Sequence[Secret],
    powers: Sequence[Secret],
    polynomials: Sequence[Secret],
    cells: Sequence[Secret],
) -> tuple[Secret, Secret]:
    """(distinct patients per cell, shape (k,); patients at more than one hospital,
    shape (1,)), as secret integers, from every party's unlinked counts (k,), the powers
    of its padded tokens (bound, degree + 1), its token polynomial (degree + 1,) and
    its cell rows (bound, k) (module doc)."""
    members = earlier_membership(ops, powers, polynomials)
    width = cells[0].shape[1]
    distinct = ops.add(ops.sum_vectors(list(unlinked)), ops.sum(cells[0], axis=0))
    shared = None
    for p in range(1, len(powers)):
        bits = members[p - 1]
        ones = ops.add_public(ops.mul_public(bits[:, 0], 0), 1)
        none_yet, one_yet = ops.sub(ones, bits[:, 0]), bits[:, 0]
        for q in range(1, p):
            bit = bits[:, q]
            not_bit = ops.sub(ones, bit)
            one_yet = ops.add(ops.mul(one_yet, not_bit), ops.mul(none_yet, bit))
            none_yet = ops.mul(none_yet, not_bit)
        first = ops.stack([none_yet] * width, axis=1)  # (bound, k)
        distinct = ops.add(distinct, ops.sum(ops.mul(first, cells[p]), axis=0))
        here = ops.sum(ops.reshape(one_yet, (one_yet.shape[0], 1)), axis=0)
        shared = here if shared is None else ops.add(shared, here)
    if shared is None:  # one party: nobody is shared
        shared = ops.mul_public(ops.sum(ops.reshape(unlinked[0], (width, 1)), axis=0), 0)
    return distinct, shared
