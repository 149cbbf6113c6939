"""What a backend is to the rest of the system: its properties and how a job runs on it.

A party calls one backend the same way whichever it is: `warm_up` when its server
starts, `preload` at a job's Prepare, `start` before the job's local step, then
`BackendJob.run` with the secure program. How the backend computes (in the server's
event loop like MPyC, or on the job's worker thread like CrypTen) is its own business.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Protocol

from smpc_ehr.errors import Refusal
from smpc_ehr.securemath.ops import OutputShareSet, ProgressSink, SecureProgram
from smpc_ehr.transport.mesh import JobChannel
from smpc_ehr.transport.tls import TlsIdentity

FULL_MODE = "full_mode"
"""Capability: fast enough comparisons of secret rows for the analyses' "full" modes."""


@dataclass(frozen=True)
class JobContext:
    """What a backend may use besides the job's channel, on one party."""

    worker: Executor
    """The party's single job thread (the local step ran there; a backend that blocks
    runs there too)."""
    tls: TlsIdentity
    """The party's own identity, for a backend that calls a service (CrypTen's dealer)."""
    dealer: tuple[str, str] | None
    """The roster's dealer (id, address), or None."""


async def run_on_worker(
    worker: Executor,
    compute: Callable[[ProgressSink], OutputShareSet],
    on_progress: ProgressSink | None,
) -> OutputShareSet:
    """Run a backend that blocks (CrypTen, the tests' reference) on the job's worker
    thread, handing its progress notes back to the event loop they belong to."""
    loop = asyncio.get_running_loop()

    def from_worker(stage: str, step: int, total: int, message: str) -> None:
        if on_progress is not None:
            loop.call_soon_threadsafe(on_progress, stage, step, total, message)

    return await loop.run_in_executor(worker, compute, from_worker)


class BackendJob(Protocol):
    """One job started on a backend (`Backend.start`), ready for its secure program."""

    async def run(
        self,
        program: SecureProgram,
        *,
        bits: int,
        round_seconds: float,
        on_progress: ProgressSink | None,
    ) -> OutputShareSet:
        """Run this party's side of `program` (called in the server's event loop);
        returns its output shares, or raises the job channel's failure."""
        ...


class Backend(ABC):
    """One MPC backend: what it needs, what it can do, and how a job runs on it."""

    name: str
    min_parties: int
    needs_dealer: bool
    sharing: str
    """The output shares' scheme, which `opening.open_outputs` knows how to open."""
    capabilities: frozenset[str] = frozenset()

    def check(self, n_parties: int, has_dealer: bool) -> None:
        """Refuse, with the reason, a federation this backend cannot serve securely."""
        if n_parties < self.min_parties:
            raise Refusal(f"the {self.name} backend needs at least {self.min_parties} parties")

    def warm_up(self) -> None:  # noqa: B027 (optional hook: most backends need nothing)
        """Load what is cheap to load when a party starts (blocking; run off the loop)."""

    def preload(self, worker: Executor) -> None:  # noqa: B027 (optional hook)
        """At a job's Prepare: start loading what the job will need, on the job's worker
        thread, so the local step and the computation queue behind it."""

    @abstractmethod
    def start(self, channel: JobChannel, context: JobContext) -> BackendJob:
        """Begin a job (in the server's event loop, before the local step, so whatever
        the backend sends first travels while the party computes)."""
