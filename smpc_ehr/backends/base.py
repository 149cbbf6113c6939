"""The backend-neutral secure operations analyses are written against.

An analysis gets a `SecureOps` for one job: it inputs the parties' local values,
computes on secret values, and names the secret values the coordinator may open.
What a value reveals is decided by the analysis, never by the backend: a backend
only ever opens what `output_shares` is given, and only to the coordinator.

Two kinds of secrets exist, and one job's outputs are all of one kind:
- secret integers (`input_ints`), exact, for counts;
- secret fixed-point numbers (`input_values`), numpy-shaped arrays of reals with
  `frac_bits` fractional bits. Their precision differs per backend and is stated
  in `Precision` (see docs/backends.md), so a caller can bound every result.
Operations work elementwise on whole arrays in one batch, so a table of k cells
costs the rounds of one cell. Results of comparisons are secret 0/1 values of the
same kind as their inputs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Secret = Any
"""A backend's secret-shared array (opaque to analyses)."""

Public = float | np.ndarray
"""A public number or numpy array (broadcast like numpy)."""


@dataclass(frozen=True)
class OutputShareSet:
    """One party's shares of a job's outputs, for the coordinator only.

    `public_meta["frac_bits"]` says how the coordinator turns opened values into
    numbers: "0" for integers, f for fixed point (value = opened integer / 2^f).
    """

    scheme: str
    modulus: int
    point: int
    degree: int
    values: list[int]
    public_meta: dict[str, str] = field(default_factory=dict)


class MixedOutputsError(TypeError):
    """A job tried to open integer and fixed-point secrets together."""

    def __init__(self, detail: str = "") -> None:
        super().__init__(
            "a job's outputs must be all secret integers or all fixed-point values: the "
            "coordinator opens them with one scale (frac_bits)" + (f"; {detail}" if detail else "")
        )


@dataclass(frozen=True)
class ApproxError:
    """The stated error of an approximated operation, for inputs in [low, high]:
    |result - exact| <= abs_error + rel_error * |exact| (measured, see docs/backends.md)."""

    low: float
    high: float
    abs_error: float
    rel_error: float

    def bound(self, exact: np.ndarray) -> np.ndarray:
        """The error bound for each exact result."""
        return self.abs_error + self.rel_error * np.abs(exact)


@dataclass(frozen=True)
class Precision:
    """What a backend promises about its fixed-point results, for a given party count.

    Additions, subtractions, sums, comparisons and selections are exact on the
    fixed-point grid; each product (mul, mul_public, matmul: one rounding per output
    element) is within `product_error` of the exact product of its rounded inputs;
    reciprocal and sqrt are approximations whose error is stated on a domain.
    `max_abs` bounds every value, intermediate results included.
    """

    frac_bits: int
    max_abs: float
    product_error: float
    reciprocal: ApproxError
    sqrt: ApproxError


COUNT_BITS = 30
"""`fractions_of_total` takes counts whose sums are below 2^COUNT_BITS (a billion)."""
RECIPROCAL_STEPS = 3
"""Newton steps for 1/a on [1, 2]: relative error 1/17 -> 3.5e-3 -> 1.2e-5 -> 1.4e-10."""


class SecureOps(ABC):
    """Secure operations on secret-shared arrays, for one job on one party.

    `add`, `sub`, `mul` and `matmul` default to the secret types' own operators, which
    both backends overload (with the backend's rounding for fixed-point products);
    `select` and `div` are built from the other operations.
    """

    n_parties: int
    my_index: int
    precision: Precision
    progress_sink: Callable[[str, int, int, str], None] | None = None
    """Where `progress` notes go (set by the party for the job; None: nowhere)."""

    def progress(self, stage: str, step: int, total: int, message: str = "") -> None:
        """Tell the analyst how far a long job is (step of total in a stage). Only the
        first party reports, so each note reaches the analyst once; the notes must be
        public (say, an iteration number), never a function of secret data."""
        if self.my_index == 0 and self.progress_sink is not None:
            self.progress_sink(stage, step, total, message)

    @property
    def frac_bits(self) -> int:
        """Fractional bits of this backend's fixed-point values (resolution 2^-frac_bits)."""
        return self.precision.frac_bits

    # -- inputs: secret integers (exact) or fixed-point values ------------------------

    @abstractmethod
    def input_ints(self, values: Sequence[int], bits: int) -> list[Secret]:
        """Secret-share this party's vector; return every party's vector, in party order.

        All parties call it with vectors of the same length (the layout is public);
        `bits` bounds the magnitude of each value and of results computed from them.
        """

    @abstractmethod
    def input_values(self, src: int, values: np.ndarray | None, shape: tuple[int, ...]) -> Secret:
        """Secret-share a real-valued array that party `src` holds.

        Party `src` passes its array; every other party passes None and the same public
        `shape`. Values are rounded to the fixed-point grid and must stay below
        `precision.max_abs`.
        """

    # -- implemented by each backend ----------------------------------------------------

    @abstractmethod
    def mul_public(self, a: Secret, c: Public) -> Secret:
        """a * c for a public number or array c (elementwise, broadcast; one rounding)."""

    @abstractmethod
    def mul_pow2(self, a: Secret, exponents: np.ndarray) -> Secret:
        """a * 2^-k elementwise, for public integers k >= 0 (`exponents`, broadcast to a's
        shape): a truncation, off by at most one product's rounding. Unlike `mul_public`
        it works for any k, also where 2^-k is below the fixed-point resolution."""

    @abstractmethod
    def stack(self, arrays: Sequence[Secret], axis: int = 0) -> Secret:
        """The secret arrays (of one shape) stacked along a new axis, like numpy.stack."""

    @abstractmethod
    def concatenate(self, arrays: Sequence[Secret], axis: int = 0) -> Secret:
        """The secret arrays joined along an existing axis, like numpy.concatenate."""

    @abstractmethod
    def transpose(self, a: Secret) -> Secret:
        """The transpose of a secret 2-d array (no communication)."""

    @abstractmethod
    def sum(self, a: Secret, axis: int | None = None) -> Secret:
        """Sum of a's elements (all of them, or along `axis`), exact."""

    def lt(self, a: Secret, b: Secret) -> Secret:
        """Elementwise secret bit [a < b] of two secrets (both backends overload `<`)."""
        return a < b

    @abstractmethod
    def ge_public(self, a: Secret, bound: float) -> Secret:
        """Elementwise secret bit [a >= bound] for a public bound."""

    @abstractmethod
    def reciprocal(self, a: Secret) -> Secret:
        """Elementwise 1 / a for nonzero a (approximate: see `precision.reciprocal`)."""

    @abstractmethod
    def sqrt(self, a: Secret) -> Secret:
        """Elementwise square root of a >= 0 (approximate: see `precision.sqrt`)."""

    @abstractmethod
    async def reveal(self, a: Secret) -> np.ndarray:
        """Open `a` to every party of the job (not to the coordinator) as a float array.

        Only for values an analysis's documented leakage lets the parties learn (the
        iterates of a model, for example); results for the coordinator go through
        `output_shares`."""

    # -- built from the operators or from the operations above ------------------------

    async def any_party(self, flag: bool) -> bool:
        """Whether any party's private flag is set, opening only that OR, to the parties
        (one input per party, ceil(log2 P) rounds of products, one opened value)."""
        unset = self.input_ints([0 if flag else 1], 2)
        return bool((await self.reveal(all_of(self, self.stack(unset))))[0] < 0.5)

    def add(self, a: Secret, b: Secret) -> Secret:
        """Elementwise a + b (exact)."""
        return a + b

    def add_public(self, a: Secret, c: Public) -> Secret:
        """a + c for a public number or array c (broadcast; fixed point: c is rounded
        to the grid)."""
        return a + (np.asarray(c, dtype=float) if isinstance(c, np.ndarray) else float(c))

    def weighted_sum(self, a: Secret, weights: np.ndarray) -> Secret:
        """sum_i weights[i] * a[i] over a's first axis, for public weights broadcast to a's
        shape: within (number of terms) x `product_error` (this default rounds every
        product; CrypTen's override rounds once per result element)."""
        return self.sum(self.mul_public(a, weights), axis=0)

    def fractions_of_total(self, counts: Secret) -> Secret:
        """counts / (their sum over axis 0), for P x g whole numbers whose column sums are
        below 2^COUNT_BITS; 0 where a column sums to 0. Within 8 x `product_error`
        (`divide_by_counts`)."""
        parts = counts.shape[0]
        return self.divide_by_counts(counts, self.sum(counts, axis=0), parts)

    def divide_by_counts(self, values: Secret, counts: Secret, rows: int) -> Secret:
        """values / counts column by column, for values R x g (R = `rows`) and whole
        numbers counts (g) below 2^COUNT_BITS, each value at most its count in magnitude
        times 2^14; 0 where a count is 0. Within 8 x `product_error` relative to the
        values' scale.

        How the statistics divide by a number of patients, anything from 1 to 2^30,
        without the reciprocal of a tiny number: this generic version scales each
        column by the secret power of two that brings its count N into [1, 2]
        (`_pow2_normalize`), then takes 1/N there by Newton's iteration from the
        minimax line 24/17 - 8/17 a (relative error at most 1/17, squared by each of
        RECIPROCAL_STEPS steps; the step corrects its own roundings).
        """
        scaled = self._pow2_normalize(self.stack([counts, *(values[j] for j in range(rows))]))
        inverse = self.reciprocal_from_one_to_two(scaled[0])
        return self.mul(scaled[1:], self.stack([inverse] * rows))

    def reciprocal_from_one_to_two(self, a: Secret) -> Secret:
        """1 / a for a in [1, 2] by Newton's iteration from the minimax line 24/17 - 8/17 a
        (relative error at most 1/17, squared by each of RECIPROCAL_STEPS steps; each step
        corrects the roundings of the last). An a of 0 gives a finite value (24/17 ...)
        that callers multiply by 0."""
        inverse = self.add_public(self.mul_public(a, -8 / 17), 24 / 17)
        for _ in range(RECIPROCAL_STEPS):  # y <- y (2 - a y) = 2y - y (a y)
            inverse = self.sub(self.add(inverse, inverse), self.mul(inverse, self.mul(a, inverse)))
        return inverse

    def _pow2_normalize(self, rows: Secret) -> Secret:
        """Each column of `rows` (R x g, whole numbers, row 0 below 2^COUNT_BITS) times
        2^-e, e = floor(log2 rows[0]) (0 where rows[0] is 0): row 0 lands in [1, 2]
        (up to one truncation) and ratios between rows are kept.

        e comes from one batch of comparisons [rows[0] 2^-k >= 1], k = 0..COUNT_BITS,
        and rows 2^-e is assembled from the truncations t_k = rows 2^-k as
        b_0 t_0 + sum_k b_k (t_k - t_(k-1)), which telescopes to t_e: no secret shift
        is needed. A batch of comparisons costs the rounds of one.
        """
        depth = COUNT_BITS + 1
        shifted = self.mul_pow2(
            self.stack([rows] * depth), np.arange(depth).reshape(-1, *([1] * len(rows.shape)))
        )
        at_least = self.ge_public(shifted[:, 0], 1.0)  # (K + 1) x g: [rows[0] >= 2^k]
        steps = self.stack(
            [shifted[0], *(self.sub(shifted[k], shifted[k - 1]) for k in range(1, depth))]
        )
        bits = self.stack([at_least] * rows.shape[0], axis=1)
        return self.sum(self.mul(bits, steps), axis=0)

    def reshape(self, a: Secret, shape: tuple[int, ...]) -> Secret:
        """The same elements in a new shape (C order), like numpy.reshape; no communication."""
        return a.reshape(shape)

    def sum_vectors(self, vectors: Sequence[Secret]) -> Secret:
        """Elementwise sum of several secret arrays of one shape (exact)."""
        total = vectors[0]
        for vector in vectors[1:]:
            total = self.add(total, vector)
        return total

    def sub(self, a: Secret, b: Secret) -> Secret:
        """Elementwise a - b (exact)."""
        return a - b

    def mul(self, a: Secret, b: Secret) -> Secret:
        """Elementwise a * b (fixed point: one rounding)."""
        return a * b

    def matmul(self, a: Secret, b: Secret) -> Secret:
        """Matrix product a @ b of two secret 2-d arrays (one rounding per element)."""
        return a @ b

    def select(self, c: Secret, a: Secret, b: Secret) -> Secret:
        """Elementwise c ? a : b for a secret 0/1 array c, as b + c * (a - b): exact,
        because a 0/1 factor needs no rounding, and it reveals nothing about c."""
        return self.add(b, self.mul(c, self.sub(a, b)))

    def div(self, a: Secret, b: Secret) -> Secret:
        """Elementwise a / b for nonzero b, as a * (1 / b): the error is |a| times the
        reciprocal's error plus one product's rounding."""
        return self.mul(a, self.reciprocal(b))


def own_values(
    ops: SecureOps, src: int, values: np.ndarray | None, shape: tuple[int, ...]
) -> np.ndarray:
    """What this party feeds into `input_values`: its own array, checked, if it is `src`;
    otherwise zeros of the public shape (a placeholder the backend never uses as data)."""
    if not 0 <= src < ops.n_parties:
        raise ValueError(f"input from party {src}, but the job has {ops.n_parties} parties")
    if src != ops.my_index:
        if values is not None:
            raise ValueError(f"party {ops.my_index} passed values for party {src}'s input")
        return np.zeros(shape, dtype=float)
    if values is None:
        raise ValueError(f"party {src} must provide its input values")
    array = np.asarray(values, dtype=float)
    if array.shape != tuple(shape):
        raise ValueError(f"input of shape {array.shape}, but the public shape is {shape}")
    if not np.all(np.isfinite(array)) or np.any(np.abs(array) >= ops.precision.max_abs):
        raise ValueError(f"input values must be finite and below {ops.precision.max_abs:g}")
    return array


def public_values(ops: SecureOps, values: np.ndarray) -> Secret:
    """An array every party knows, as a secret (party 0 inputs it): how a program puts
    public figures (a count of iterations, a padded size) among its opened outputs."""
    return ops.input_values(0, values if ops.my_index == 0 else None, values.shape)


def all_of(ops: SecureOps, bits: Secret) -> Secret:
    """The product of secret 0/1 values along axis 0 (a logical AND, shape bits[0]'s): in
    ceil(log2 len) rounds of products and no comparison."""
    rows = [bits[i] for i in range(bits.shape[0])]
    while len(rows) > 1:
        half = len(rows) // 2
        products = ops.mul(ops.stack(rows[0 : 2 * half : 2]), ops.stack(rows[1 : 2 * half : 2]))
        rows = [products[i] for i in range(half)] + rows[2 * half :]
    return rows[0]


ProgressSink = Callable[[str, int, int, str], None]
"""Receives (stage, step, total, message) progress notes of a running job."""

SecureProgram = Callable[[SecureOps], Coroutine[Any, Any, list[Secret]]]
"""The secure part of an analysis: returns the secrets the coordinator may open
(their elements, flattened in C order and concatenated in order, are what
`Analysis.finalize` receives)."""
