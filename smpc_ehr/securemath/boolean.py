"""Logical combinations of secret 0/1 values, and an OR over the parties' private flags."""

from __future__ import annotations

from smpc_ehr.securemath.ops import Secret, SecureOps


def all_of(ops: SecureOps, bits: Secret) -> Secret:
    """The product of secret 0/1 values along axis 0 (a logical AND, shape bits[0]'s): in
    ceil(log2 len) rounds of products and no comparison; exact (0/1 products need no
    rounding)."""
    rows = [bits[i] for i in range(bits.shape[0])]
    while len(rows) > 1:
        half = len(rows) // 2
        products = ops.mul(ops.stack(rows[0 : 2 * half : 2]), ops.stack(rows[1 : 2 * half : 2]))
        rows = [products[i] for i in range(half)] + rows[2 * half :]
    return rows[0]


async def any_party(ops: SecureOps, flag: bool) -> bool:
    """Whether any party's private flag is set, opening only that OR, to the parties
    (one input per party, ceil(log2 P) rounds of products, one opened value; exact)."""
    with ops.parties_only():
        unset = ops.input_ints([0 if flag else 1], 2)
        return bool((await ops.reveal(all_of(ops, ops.stack(unset))))[0] < 0.5)
