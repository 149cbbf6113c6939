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
from collections.abc import Callable, Coroutine, Iterator, Sequence
from contextlib import contextmanager
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


class SecureOps(ABC):
    """Secure operations on secret-shared arrays, for one job on one party.

    `add`, `sub`, `mul` and `matmul` default to the secret types' own operators, which
    both backends overload (with the backend's rounding for fixed-point products);
    `select` and `div` are built from the other operations.
    """

    n_parties: int
    my_index: int
    backend: str
    """The registered backend whose protocol these ops run (a stand-in: the one it stands
    in for): what a secret-shared input tolerates in colluders, so what noise added for
    differential privacy is calibrated against (`privacy.mechanism.tolerated_colluders`)."""
    precision: Precision
    comparisons_per_octave: int = 1
    """How finely `securemath.division.divide_by_bounded_counts` may split each power of
    two of a count by comparisons (all in one batch) to start its Newton iteration
    closer and run fewer steps: more where a wider batch of comparisons costs less than
    the rounds of products it saves (CrypTen), 1 where comparisons cost computation
    (MPyC: bit by bit)."""
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

    def exact_bits(self, a: Secret) -> Secret:
        """`a`, values that are 0 or 1 up to product roundings (sums and products of
        comparison results), made exactly 0 or 1 before they mask anything: a mask of
        one unit of the last place would open a hidden value times that unit. By
        default one batch of comparisons with 1/2; a backend whose products of bits
        are exact returns `a` (MPyC)."""
        return self.ge_public(a, 0.5)

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

    # -- field elements: only for equality (deduplicated counts, `securemath.distinct`) --

    field_equality: bool = False
    """Whether this backend has `input_field_elements` and `is_zero`: its secret
    integers live in a prime field, where a product is 0 only if a factor is."""

    @property
    def field_modulus(self) -> int:
        """The prime of the secret integers' field (`field_equality` backends only)."""
        raise NotImplementedError(f"backend {self.backend!r} has no field equality")

    def input_field_elements(self, values: Sequence[int], below: int) -> list[Secret]:
        """Secret-share this party's vector of integers in 0..below-1 as elements of the
        secret integers' field (every party's vector, in party order; one public length).
        They are compared only for equality, by polynomials and `is_zero`,
        never by size, so they may be as large as the field allows: the backend refuses
        a `below` its field cannot hold distinct."""
        del values, below
        raise NotImplementedError(f"backend {self.backend!r} has no field equality")

    def is_zero(self, a: Secret) -> Secret:
        """Elementwise secret bit [a == 0] for any element of the field (not only for
        bounded integers, as comparisons need)."""
        del a
        raise NotImplementedError(f"backend {self.backend!r} has no field equality")

    # -- hooks for `smpc_ehr.securemath` (a backend may override them) -----------------

    def pow2_normalize(self, rows: Secret) -> Secret | None:
        """A faster way, on this backend, to do `securemath.division.pow2_normalize`
        (same contract, same error bound); None: use the generic one."""
        del rows
        return None

    @contextmanager
    def parties_only(self) -> Iterator[None]:
        """Inputs made inside are opened to the parties only, never output to the
        coordinator (`securemath.boolean.any_party`): a backend that tracks what its
        outputs were made of leaves them out."""
        yield

    # -- built from the operators or from the operations above ------------------------

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


ProgressSink = Callable[[str, int, int, str], None]
"""Receives (stage, step, total, message) progress notes of a running job."""

SecureProgram = Callable[[SecureOps], Coroutine[Any, Any, list[Secret]]]
"""The secure part of an analysis: returns the secrets the coordinator may open
(their elements, flattened in C order and concatenated in order, are what
`Analysis.finalize` receives)."""
