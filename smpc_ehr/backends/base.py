"""The backend-neutral secure operations analyses are written against.

An analysis gets a `SecureOps` for one job: it inputs each party's local vector,
computes on secret values, and names the secret values the coordinator may open.
What a value reveals is decided by the analysis, never by the backend: a backend
only ever opens what `output_shares` is given, and only to the coordinator.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

Secret = Any
"""A backend's secret-shared value (opaque to analyses)."""


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
    def input_ints(self, values: Sequence[int], bits: int) -> list[list[Secret]]:
        """Secret-share this party's vector; return every party's vector, in party order.

        All parties call it with vectors of the same length (the layout is public);
        `bits` bounds the magnitude of each value and of results computed from them.
        """

    @abstractmethod
    def add(self, a: Sequence[Secret], b: Sequence[Secret]) -> list[Secret]:
        """Elementwise a + b."""

    @abstractmethod
    def mul(self, a: Sequence[Secret], b: Sequence[Secret]) -> list[Secret]:
        """Elementwise a * b."""

    @abstractmethod
    def ge_public(self, a: Sequence[Secret], bound: int) -> list[Secret]:
        """Elementwise secret bit [a >= bound]."""

    def sum_vectors(self, vectors: Sequence[Sequence[Secret]]) -> list[Secret]:
        """Elementwise sum of several secret vectors."""
        total = list(vectors[0])
        for vector in vectors[1:]:
            total = self.add(total, vector)
        return total


SecureProgram = Callable[[SecureOps], Awaitable[list[Secret]]]
"""The secure part of an analysis: returns the secrets the coordinator may open."""
