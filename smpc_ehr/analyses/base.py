"""What an analysis is: a local plaintext step, a secure program, and a finaliser.

1. `local_input` runs on each party over its own data, in plaintext, and yields
   the integers that party secret-shares (never sent anywhere in the clear).
2. `secure_program` runs inside MPC on every party and returns, by name, the secret
   values the coordinator may open (disclosure decisions are made here, inside MPC).
   `outputs` declares those names and their public shapes, from the parameters.
3. `finalize` runs on the coordinator over the opened values, by name, and builds
   the released result. It sees nothing the secure program did not choose to open.

Each analysis is one package under a family folder (`statistics/`, `models/`,
`diagnostics/`) whose `__init__.py` sets `ANALYSIS`; `smpc_ehr.analyses` finds them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from math import prod
from typing import TYPE_CHECKING, Any

import numpy as np

from smpc_ehr.analyses.common import cost
from smpc_ehr.analyses.common import noise as dp_noise
from smpc_ehr.analyses.common.cost import CostRelease
from smpc_ehr.analyses.common.text import render_generic
from smpc_ehr.analyses.common.tidy import Row, generic_rows
from smpc_ehr.data.records import PartyData
from smpc_ehr.privacy.accountant import Charge
from smpc_ehr.securemath.ops import Secret, SecureOps, SecureProgram

if TYPE_CHECKING:
    from smpc_ehr.data.relations import SqlSnapshot

Params = Mapping[str, Any]
"""Bound (validated, typed) parameters of a job."""

LocalInput = Any
"""A party's private input: integers to secret-share, or a numpy array of local
moments; only this party's secure program reads it (it is never sent in the clear)."""


NamedSecrets = dict[str, Secret]
NamedProgram = Callable[[SecureOps], Coroutine[Any, Any, NamedSecrets]]
"""The secure part of an analysis: returns the secrets the coordinator may open, by
the names `Analysis.outputs` declares."""


@dataclass(frozen=True)
class JobSetting:
    """Public facts of a job an analysis may need beyond its parameters: the backend
    that runs it and the number of parties (noise for differential privacy is
    calibrated to both). The coordinator passes it to `release`; a party's secure
    program reads the same facts from its ops (`SecureOps.backend`, `n_parties`)."""

    backend: str
    parties: int


@dataclass(frozen=True)
class Output:
    """One named output of a secure program and its public shape (() for a scalar)."""

    name: str
    shape: tuple[int, ...] = ()

    @property
    def size(self) -> int:
        return prod(self.shape)


class OutputMismatch(ValueError):
    """A secure program's outputs, or the opened values, do not fit the declared ones."""


def flatten_outputs(spec: Sequence[Output], secrets: NamedSecrets) -> list[Secret]:
    """The named secrets in the declared order, after checking names and shapes."""
    names = [out.name for out in spec]
    if sorted(secrets) != sorted(names):
        raise OutputMismatch(f"the program returned {sorted(secrets)}, declared {names}")
    for out in spec:
        shape = tuple(getattr(secrets[out.name], "shape", ()))  # an MPyC scalar has none
        if shape != out.shape:
            raise OutputMismatch(f"output {out.name!r} has shape {shape}, declared {out.shape}")
    return [secrets[name] for name in names]


def decode_outputs(spec: Sequence[Output], opened: Sequence[float]) -> dict[str, np.ndarray]:
    """The opened values (flat, in the declared order) back into named arrays."""
    total = sum(out.size for out in spec)
    if len(opened) != total:
        raise OutputMismatch(f"{len(opened)} opened values, but the outputs declare {total}")
    named: dict[str, np.ndarray] = {}
    start = 0
    for out in spec:
        named[out.name] = np.asarray(opened[start : start + out.size]).reshape(out.shape)
        start += out.size
    return named


class Analysis(ABC):
    """One kind of joint computation; subclasses document their leakage.

    The party calls `flat_program` and the coordinator `release`; an analysis
    implements `outputs`, `secure_program` and `finalize` with named values.
    """

    name: str
    bits: int = 32
    """Bit length of the secret integers this analysis needs."""
    reads_patient_data: bool = True
    """False only for diagnostics that compute on public synthetic numbers (the backend
    self-test): a hospital requiring differential privacy still runs them exactly."""

    @abstractmethod
    def validate(self, params: Params) -> None:
        """Raise TemplateError for value combinations the template's bounds cannot express."""

    def validate_backend(self, params: Params, backend: str) -> None:
        """Raise TemplateError if these parameters cannot run on `backend` (default: any)."""
        del params, backend  # every backend runs every analysis unless it says otherwise

    @abstractmethod
    def local_input(self, data: PartyData, params: Params) -> LocalInput:
        """This party's private input (of the same public shape at every party)."""

    def local_input_sql(self, snapshot: SqlSnapshot, params: Params) -> LocalInput | None:
        """`local_input` computed as SQL in a database source (`data.pushdown`): the
        same value, without the party holding the rows. None (the default): this
        analysis, with these parameters, is not pushed down, and the party materialises
        the rows and calls `local_input`."""
        del snapshot, params
        return None

    @abstractmethod
    def outputs(self, params: Params) -> tuple[Output, ...]:
        """The secrets the coordinator may open: names and public shapes, in order."""

    @abstractmethod
    def secure_program(self, local: LocalInput, params: Params, threshold: int) -> NamedProgram:
        """The MPC part: from all parties' inputs to the secrets the coordinator may open."""

    @abstractmethod
    def finalize(
        self, opened: dict[str, np.ndarray], params: Params, threshold: int
    ) -> dict[str, Any]:
        """The released result (plain JSON types) from the opened values by name
        (integers, or floats for backends that compute in fixed point)."""

    def render(self, result: dict[str, Any]) -> str:
        """The released result as a terminal table (default: counts, else `key: value`
        lines); analyses with a layout of their own override it in their render.py."""
        return render_generic(result)

    def tidy(self, result: dict[str, Any]) -> list[Row]:
        """The released result as tidy rows, one per estimate (common/tidy.py, what
        `smpc-ehr run --csv` writes); default: a row per number of the result, which
        analyses with rows of their own override in their tidy.py."""
        return generic_rows(result)

    def flat_program(self, local: LocalInput, params: Params, threshold: int) -> SecureProgram:
        """`secure_program` as the backends run it: its outputs checked against
        `outputs` and listed in the declared order."""
        named = self.secure_program(local, params, threshold)
        spec = self.outputs(params)

        async def program(ops: SecureOps) -> list[Secret]:
            return flatten_outputs(spec, await named(ops))

        return program

    def noisy_releases(self, params: Params) -> tuple[dp_noise.NoisyRelease, ...]:
        """The groups of values a run with `epsilon` releases with noise, and how that
        noise is sized (`common.noise`); the secure program adds each group's noise with
        the same objects. Empty (the default): the analysis has no DP variant, and a
        job asking for one is refused."""
        del params
        return ()

    def charge(self, params: Params) -> Charge | None:
        """What a job spends from each hospital's privacy budget: the rho its noise is
        calibrated to, or None for an exact run."""
        charge = dp_noise.charge(params)
        if charge is not None:
            releases = self.noisy_releases(params)
            if not releases:
                raise ValueError(f"analysis {self.name!r} has no differentially private variant")
            dp_noise.check_shares(releases)
        return charge

    def noise(self, params: Params, setting: JobSetting) -> dict[str, Any] | None:
        """What the release carries about the noise added for differential privacy
        (mechanism, epsilon, delta, rho, noise sd of each value), or None for an exact
        run."""
        return dp_noise.report(params, self.noisy_releases(params), setting)

    def release(
        self,
        opened: Sequence[float],
        params: Params,
        threshold: int,
        setting: JobSetting | None = None,
    ) -> dict[str, Any]:
        """The released result from the flat opened values, as the coordinator has them,
        with `noise`'s report under "dp" when the run was differentially private
        (which needs the job's `setting`)."""
        result = self.finalize(decode_outputs(self.outputs(params), opened), params, threshold)
        if setting is None:
            if params.get("epsilon") is not None:
                raise ValueError("a differentially private release needs the job's setting")
            return result
        report = self.noise(params, setting)
        if report is None:
            return result
        result = {**result, "dp": report}
        self.with_noise(result, params)
        return result

    def cost_release(self, params: Params) -> CostRelease:
        """Which of the job's cost figures (hops; messages and bytes per party) the
        analyst may see: only those fixed by the parameters and by what the result
        releases (common/cost.py). Default: all, which holds while every party's input
        has a public shape and nothing is opened mid-way but a joint refusal."""
        del params
        return cost.ALL

    def with_noise(self, result: dict[str, Any], params: Params) -> None:
        """Complete a differentially private result in place once its "dp" report is
        there: estimates whose uncertainty includes the noise need its sd, which depends
        on the job's setting and so is known only here (default: nothing to add)."""
        del result, params
