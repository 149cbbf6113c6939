"""The backend-neutral secure operations analyses are written against.

An analysis gets a `SecureOps` for one job: it inputs each party's local vector,
computes on secret values, and names the secret values the coordinator may open.
What a value reveals is decided by the analysis, never by the backend: a backend
only ever opens what `output_shares` is given, and only to the coordinator.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

SecretVector = Any
"""A backend's secret-shared vector of integers (opaque to analyses); operations on
vectors are elementwise and run as one batch, so a table costs the rounds of one cell."""


@dataclass(frozen=True)
class OutputShareSet:
    """One party's shares of a job's outputs, for the coordinator only."""

    scheme: str
    modulus: int
    point: int
    degree: int
    values: list[int]
    public_meta: dict[str, str] = field(default_factory=dict)


class SecureOps(ABC):
    """Secure operations on secret-shared integers, for one job on one party."""

    n_parties: int
    my_index: int

    @abstractmethod
    def input_ints(self, values: Sequence[int], bits: int) -> list[SecretVector]:
        """Secret-share this party's vector; return every party's vector, in party order.

        All parties call it with vectors of the same length (the layout is public);
        `bits` bounds the magnitude of each value and of results computed from them.
        """

    @abstractmethod
    def add(self, a: SecretVector, b: SecretVector) -> SecretVector:
        """Elementwise a + b."""

    @abstractmethod
    def mul(self, a: SecretVector, b: SecretVector) -> SecretVector:
        """Elementwise a * b."""

    @abstractmethod
    def ge_public(self, a: SecretVector, bound: int) -> SecretVector:
        """Elementwise secret bit [a >= bound]."""

    def sum_vectors(self, vectors: Sequence[SecretVector]) -> SecretVector:
        """Elementwise sum of several secret vectors."""
        total = vectors[0]
        for vector in vectors[1:]:
            total = self.add(total, vector)
        return total


SecureProgram = Callable[[SecureOps], Coroutine[Any, Any, list[SecretVector]]]
"""The secure part of an analysis: returns the secret vectors the coordinator may open
(their elements, concatenated in order, are what `Analysis.finalize` receives)."""
