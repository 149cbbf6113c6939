"""Backend self-test: every secure operation, on inputs that are public by construction.

Why: the conformance tests (and an operator checking a new federation) need to run
each operation of `SecureOps` over real parties and compare it with plain numpy,
within the backend's stated precision. This analysis never touches patient data:
each party's input is a deterministic function of the public seed, its index in the
job and the size (`party_inputs`), so anyone can recompute every input and every
expected result.

How it runs: each party i makes x_i, y_i (in [-4, 4]), p_i (in [0.5, 8]) of length
`size`, u_i (3 x size) and v_i (size x 3), all on the grid of multiples of 2^-8, so
both backends hold them exactly. With X = sum_i x_i, Y = sum_i y_i, U = sum_i u_i,
V = sum_i v_i and c = `public_factors(size)`, the secure program opens, by name
(`layout`: the outputs' names and shapes):

    add          X                        (size)   additions of every party's x_i
    sub          X - Y                    (size)
    mul          X * Y                    (size)
    mul_public   X * c                    (size)
    matmul       U @ V                    (3 x 3)
    sum          sum of X's elements      (1)
    sum_axis     U summed along axis 1    (3)
    lt           [X < Y]                  (size)   two secrets compared
    ge_public    [X >= 0.5]               (size)
    select       [X < Y] ? X : Y          (size)
    reciprocal   1 / p_0                  (size)
    div          X / p_(n-1)              (size)
    sqrt         sqrt(p_0 + p_(n-1))      (size)
    add_public   X + ADD_CONSTANT          (size)
    stack        [X, Y]                   (2 x size)
    reshape      U as (size x 3)          (size x 3)
    mul_pow2     X * 2^-k, k = pow2_exponents(size)   (size)   k up to 23: below
                                                               CrypTen's resolution too
    fractions_of_total  c_0 / sum_i c_i     (size)   c_i: party i's whole numbers in
                                                     [0, MAX_COUNT], column 0 all 0
    concatenate  [X, Y] joined            (2 size)
    transpose    U'                       (size x 3)
    weighted_sum c X + c' Y, c' = c reversed   (size)
    bits_scaled  [X >= 0.5] * c           (size)   a comparison result times public
                                                   fractions (CrypTen: bits at scale 1)
    mixed_stack  [[X < Y], X]             (2 x size)  bits and fixed point joined

The reciprocal, division and sqrt inputs stay in [0.5, 16], inside both backends'
stated domains. `finalize` returns each result by name, as lists of floats.

Leakage: see the package docstring (the template's text, verbatim).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from smpc_ehr.analyses.base import Analysis, NamedProgram, NamedSecrets, Output, Params
from smpc_ehr.data.records import PartyData
from smpc_ehr.securemath.division import fractions_of_total
from smpc_ehr.securemath.ops import Secret, SecureOps

GRID = 2.0**-8
"""Inputs are multiples of 2^-8: exact in both backends (16 and 32 fractional bits)."""
ROWS = 3
"""Rows of u_i (and columns of v_i): U @ V is ROWS x ROWS."""
GE_BOUND = 0.5
"""The public bound of `ge_public`."""
ADD_CONSTANT = 0.75
"""The public constant of `add_public` (on both backends' grids)."""
MAX_COUNT = 2**20
"""Each party's counts `c` for `fractions_of_total` lie in [0, MAX_COUNT]."""


def layout(size: int) -> list[tuple[str, tuple[int, ...]]]:
    """The opened results: name and shape, in the declared order."""
    vector = (size,)
    return [
        ("add", vector),
        ("sub", vector),
        ("mul", vector),
        ("mul_public", vector),
        ("matmul", (ROWS, ROWS)),
        ("sum", (1,)),
        ("sum_axis", (ROWS,)),
        ("lt", vector),
        ("ge_public", vector),
        ("select", vector),
        ("reciprocal", vector),
        ("div", vector),
        ("sqrt", vector),
        ("add_public", vector),
        ("stack", (2, size)),
        ("reshape", (size, ROWS)),
        ("mul_pow2", vector),
        ("fractions_of_total", vector),
        ("concatenate", (2 * size,)),
        ("transpose", (size, ROWS)),
        ("weighted_sum", vector),
        ("bits_scaled", vector),
        ("mixed_stack", (2, size)),
    ]


@dataclass(frozen=True)
class PartyInputs:
    """One party's self-test inputs (public: a function of seed, index and size)."""

    x: np.ndarray
    y: np.ndarray
    p: np.ndarray
    u: np.ndarray
    v: np.ndarray
    c: np.ndarray


def party_inputs(seed: int, index: int, size: int) -> PartyInputs:
    """Party `index`'s inputs, the same on every machine (numpy's PCG64 from the seed)."""
    rng = np.random.default_rng([seed, index, size])

    def on_grid(low: float, high: float, shape: tuple[int, ...]) -> np.ndarray:
        return np.round(rng.uniform(low, high, shape) / GRID) * GRID

    return PartyInputs(
        x=on_grid(-4, 4, (size,)),
        y=on_grid(-4, 4, (size,)),
        p=on_grid(0.5, 8, (size,)),
        u=on_grid(-2, 2, (ROWS, size)),
        v=on_grid(-2, 2, (size, ROWS)),
        # drawn last; column 0 is 0 at every party (a total of 0 gives fractions 0)
        c=np.where(np.arange(size) == 0, 0, rng.integers(0, MAX_COUNT, size, endpoint=True)),
    )


def pow2_exponents(size: int) -> np.ndarray:
    """The public exponents k of `mul_pow2`: 0, 1, ..., 23, 0, 1, ..."""
    return np.arange(size) % 24


def public_factors(size: int) -> np.ndarray:
    """The public factors c of `mul_public`: evenly spaced in [-2, 2], on the grid."""
    return np.round(np.linspace(-2, 2, size) / GRID) * GRID


def weights(size: int) -> np.ndarray:
    """The public weights of `weighted_sum`: c and c reversed (2 x size)."""
    factors = public_factors(size)
    return np.stack([factors, factors[::-1]])


class SelftestAnalysis(Analysis):
    """Every secure operation once, on public synthetic inputs (no patient data)."""

    name = "selftest"
    reads_patient_data = False  # inputs come from the public seed, never the data

    def validate(self, params: Params) -> None:
        """The template's bounds on seed and size are all there is to check."""

    def local_input(self, data: PartyData, params: Params) -> list[int]:
        return []  # deliberately nothing from the party's data: inputs come from the seed

    def outputs(self, params: Params) -> tuple[Output, ...]:
        return tuple(Output(name, shape) for name, shape in layout(int(params["size"])))

    def secure_program(self, local: list[int], params: Params, threshold: int) -> NamedProgram:
        seed, size = int(params["seed"]), int(params["size"])

        async def program(ops: SecureOps) -> NamedSecrets:
            n, me = ops.n_parties, ops.my_index
            mine = party_inputs(seed, me, size)

            def shared(name: str, src: int) -> Secret:
                value: np.ndarray = getattr(mine, name)
                return ops.input_values(src, value if src == me else None, value.shape)

            every = range(n)
            x = ops.sum_vectors([shared("x", i) for i in every])
            y = ops.sum_vectors([shared("y", i) for i in every])
            u = ops.sum_vectors([shared("u", i) for i in every])
            v = ops.sum_vectors([shared("v", i) for i in every])
            p_first, p_last = shared("p", 0), shared("p", n - 1)
            below = ops.lt(x, y)
            results = {
                "add": x,
                "sub": ops.sub(x, y),
                "mul": ops.mul(x, y),
                "mul_public": ops.mul_public(x, public_factors(size)),
                "matmul": ops.matmul(u, v),
                # the whole sum (a scalar, which has no shape in MPyC) as a (1,) array
                "sum": ops.add(ops.mul_public(x[0:1], 0.0), ops.sum(x)),
                "sum_axis": ops.sum(u, axis=1),
                "lt": below,
                "ge_public": ops.ge_public(x, GE_BOUND),
                "select": ops.select(below, x, y),
                "reciprocal": ops.reciprocal(p_first),
                "div": ops.div(x, p_last),
                "sqrt": ops.sqrt(ops.add(p_first, p_last)),
                "add_public": ops.add_public(x, ADD_CONSTANT),
                "stack": ops.stack([x, y]),
                "reshape": ops.reshape(u, (size, ROWS)),
                "mul_pow2": ops.mul_pow2(x, pow2_exponents(size)),
                "fractions_of_total": fractions_of_total(
                    ops, ops.stack([shared("c", i) for i in every])
                )[0],
                "concatenate": ops.concatenate([x, y]),
                "transpose": ops.transpose(u),
                "weighted_sum": ops.weighted_sum(ops.stack([x, y]), weights(size)),
                "bits_scaled": ops.mul_public(ops.ge_public(x, GE_BOUND), public_factors(size)),
                "mixed_stack": ops.stack([below, x]),
            }
            return results

        return program

    def finalize(
        self, opened: dict[str, np.ndarray], params: Params, threshold: int
    ) -> dict[str, Any]:
        return {name: np.asarray(values, dtype=float).tolist() for name, values in opened.items()}
