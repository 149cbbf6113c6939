"""An in-process federation: an analysis end to end over the plaintext reference ops.

What it drives is the analysis contract with the real pieces around it, not the
party and coordinator servicers (whose job code picks the MPyC or CrypTen backend
by name and needs a mesh with TLS): the coordinator's checks of a submission
(template binding, `validate`, `validate_backend`), its threshold (the largest of
the parties' minimums, `combine_thresholds`) and each party's acceptance of it
(`effective_threshold`); every party's `local_input` on its own data, with the
joint refusal of unusable values (`guarded`); every party's secure program on its
own `ReferenceOps` (one thread each, meeting in a `Rendezvous`); the opening as the
coordinator does it (one kind of outputs, additive shares through `open_outputs`);
and the analysis's `release` (its finaliser over the named outputs).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from smpc_ehr.analyses import ANALYSES
from smpc_ehr.analyses.base import Analysis, Params
from smpc_ehr.analyses.common.local_checks import UnusableValues, guarded
from smpc_ehr.backends.opening import open_outputs
from smpc_ehr.data.loader import load_party_data
from smpc_ehr.data.records import PartyData
from smpc_ehr.errors import JointRefusal
from smpc_ehr.policy.approval import (
    DEFAULT_MIN_CELL_COUNT,
    PartyPolicy,
    combine_thresholds,
    effective_threshold,
)
from smpc_ehr.securemath.ops import MixedOutputsError, Secret, SecureProgram
from smpc_ehr.study.template import ProtocolTemplate, load_template
from smpc_ehr.testing.reference import ReferenceFailure, ReferenceOps, RefSecret, Rendezvous

ADDITIVE_MODULUS = 2**64
"""The coordinator opens the reference's outputs as additive shares in Z_2^64."""


@dataclass(frozen=True)
class Hospital:
    """One in-process party: its data and its policy's small-cell minimum."""

    id: str
    data: PartyData
    min_cell_count: int = DEFAULT_MIN_CELL_COUNT


@dataclass
class Outcome:
    """A job's released result, with what the parties saw on the way."""

    result: dict[str, Any]
    threshold: int
    opened: list[int] | list[float]
    progress: list[tuple[str, int, int, str]] = field(default_factory=list)


class InProcessFederation:
    """P hospitals in one process; `run` a protocol template like `smpc-ehr run` would."""

    def __init__(self, hospitals: Sequence[Hospital], seed: int = 0) -> None:
        if not hospitals:
            raise ValueError("a federation needs at least one hospital")
        self.hospitals = list(hospitals)
        self.seed = seed

    @classmethod
    def from_folder(
        cls, data: Path, min_cell_counts: int | Sequence[int] = DEFAULT_MIN_CELL_COUNT
    ) -> InProcessFederation:
        """The hospitals of a data folder (one sub-folder each, as `smpc-ehr synth` writes)."""
        folders = sorted(p for p in Path(data).iterdir() if p.is_dir())
        minimums = (
            [min_cell_counts] * len(folders)
            if isinstance(min_cell_counts, int)
            else list(min_cell_counts)
        )
        return cls(
            [
                Hospital(folder.name, load_party_data(folder), minimum)
                for folder, minimum in zip(folders, minimums, strict=True)
            ]
        )

    def run(
        self,
        template: Path | ProtocolTemplate,
        params: Mapping[str, Any] | None = None,
        backend: str = "mpyc",
    ) -> Outcome:
        """Submit, prepare, run and release one job; `backend` is the backend whose rules
        the job is checked against (`validate_backend`): the reference computes either way.
        Raises what the coordinator would report (TemplateError, Refusal, JointRefusal)."""
        if not isinstance(template, ProtocolTemplate):
            template = load_template(template)
        analysis = ANALYSES[template.analysis]
        bound = template.bind(dict(params or {}))
        analysis.validate(bound)
        analysis.validate_backend(bound, backend)
        threshold = combine_thresholds(h.min_cell_count for h in self.hospitals)
        for hospital in self.hospitals:
            effective_threshold(PartyPolicy(min_cell_count=hospital.min_cell_count), threshold)
        return run_analysis(
            analysis, [h.data for h in self.hospitals], bound, threshold, seed=self.seed
        )


def run_analysis(
    analysis: Analysis,
    datas: Sequence[PartyData],
    params: Params,
    threshold: int,
    seed: int = 0,
) -> Outcome:
    """The analysis contract, end to end: every party's local step and secure program,
    the coordinator's opening, the finaliser. The only place this package calls an
    analysis's programs and finaliser (through `flat_program` and `release`, as the
    party and the coordinator do)."""
    programs: list[SecureProgram] = []
    for data in datas:
        program: SecureProgram | None = None
        problem: UnusableValues | None = None
        try:
            local = analysis.local_input(data, params)
            program = analysis.flat_program(local, params, threshold)
        except UnusableValues as exc:  # decided jointly, as on a party
            problem = exc
        programs.append(guarded(program, problem))
    progress: list[tuple[str, int, int, str]] = []
    outputs = execute(programs, analysis.bits, seed, progress)
    opened = open_outputs_of(outputs, seed)
    result = analysis.release(opened, params, threshold)
    return Outcome(result, threshold, opened, progress)


def execute(
    programs: Sequence[SecureProgram],
    bits: int = 32,
    seed: int = 0,
    progress: list[tuple[str, int, int, str]] | None = None,
) -> list[list[RefSecret]]:
    """Run party i's program on its own `ReferenceOps`, one thread per party; the
    parties' failures are reported as the coordinator would (a joint refusal as such)."""
    rendezvous = Rendezvous(len(programs))
    results: list[list[RefSecret] | None] = [None] * len(programs)
    failures: list[BaseException | None] = [None] * len(programs)

    def party(index: int) -> None:
        ops = ReferenceOps(rendezvous, index, bits=bits, seed=seed)
        if progress is not None:
            ops.progress_sink = lambda *note: progress.append(note)
        try:
            secrets = asyncio.run(programs[index](ops))
            results[index] = [_checked(s) for s in secrets]
        except BaseException as exc:  # every failure fails the job everywhere
            failures[index] = exc
            rendezvous.fail(exc)

    threads = [
        threading.Thread(target=party, args=(i,), name=f"party-{i}") for i in range(len(programs))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    raised = [f for f in failures if f is not None]
    if raised:
        joint = [f for f in raised if isinstance(f, JointRefusal)]
        if joint:
            raise joint[0]
        own = [f for f in raised if not isinstance(f, ReferenceFailure)] or raised
        raise own[0]
    return [r for r in results if r is not None]


def _checked(secret: Secret) -> RefSecret:
    if not isinstance(secret, RefSecret):
        raise TypeError(f"a secure program returned {type(secret).__name__}, not a secret")
    return secret


def open_outputs_of(outputs: Sequence[Sequence[RefSecret]], seed: int) -> list[int] | list[float]:
    """What the coordinator opens: every party's outputs must agree; they are split into
    additive shares of their integer encodings and opened with `open_outputs`."""
    first = outputs[0]
    for other in outputs[1:]:
        if len(other) != len(first) or any(
            not np.array_equal(a.value, b.value) for a, b in zip(first, other, strict=True)
        ):
            raise ReferenceFailure("the parties' outputs differ (their programs drifted apart)")
    fracs = {s.frac for s in first}
    if len(fracs) > 1:
        raise MixedOutputsError()
    frac = fracs.pop() if fracs else 0
    flat = [float(v) for s in first for v in np.asarray(s.value, dtype=float).reshape(-1)]
    encoded = [round(v * 2**frac) % ADDITIVE_MODULUS for v in flat]
    rng = np.random.default_rng(seed)
    shares: dict[int, list[int]] = {}
    remainder = list(encoded)
    for point in range(1, len(outputs)):
        part = [int(x) for x in rng.integers(0, 2**63, size=len(encoded), dtype=np.uint64)]
        shares[point] = part
        remainder = [(r - x) % ADDITIVE_MODULUS for r, x in zip(remainder, part, strict=True)]
    shares[len(outputs)] = remainder
    return open_outputs("additive", shares, 0, ADDITIVE_MODULUS, frac)
