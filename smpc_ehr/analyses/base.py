"""What an analysis is: a local plaintext step, a secure program, and a finaliser.

1. `local_input` runs on each party over its own data, in plaintext, and yields
   the integers that party secret-shares (never sent anywhere in the clear).
2. `secure_program` runs inside MPC on every party and returns the secret values
   the coordinator may open (disclosure decisions are made here, inside MPC).
3. `finalize` runs on the coordinator over the opened values and builds the
   released result. It sees nothing the secure program did not choose to open.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

from smpc_ehr.backends.base import SecureProgram
from smpc_ehr.data.records import PartyData

Params = Mapping[str, Any]
"""Bound (validated, typed) parameters of a job."""

LocalInput = Any
"""A party's private input: integers to secret-share, or a numpy array of local
moments; only this party's secure program reads it (it is never sent in the clear)."""


class Analysis(ABC):
    """One kind of joint computation; subclasses document their leakage."""

    name: str
    bits: int = 32
    """Bit length of the secret integers this analysis needs."""

    @abstractmethod
    def validate(self, params: Params) -> None:
        """Raise TemplateError for value combinations the template's bounds cannot express."""

    def validate_backend(self, params: Params, backend: str) -> None:
        """Raise TemplateError if these parameters cannot run on `backend` (default: any)."""
        del params, backend  # every backend runs every analysis unless it says otherwise

    @abstractmethod
    def local_input(self, data: PartyData, params: Params) -> LocalInput:
        """This party's private input (of the same public shape at every party)."""

    @abstractmethod
    def secure_program(self, local: LocalInput, params: Params, threshold: int) -> SecureProgram:
        """The MPC part: from all parties' inputs to the secrets the coordinator may open."""

    @abstractmethod
    def finalize(self, opened: Sequence[float], params: Params, threshold: int) -> dict[str, Any]:
        """The released result (plain JSON types) from the opened values (integers, or
        floats for backends that compute in fixed point)."""
