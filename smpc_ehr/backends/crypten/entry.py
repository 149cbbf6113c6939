"""The CrypTen backend as the registry sees it: 2+ parties, a dealer, additive shares.

Cheap to import: torch and crypten load only at a CrypTen job's Prepare (`preload`),
so a party that never runs one never loads them. CrypTen is synchronous, so a job
runs on the party's worker thread; `CryptenJob.run` hides that hop.
"""

from __future__ import annotations

import importlib
import os
from concurrent.futures import Executor

from smpc_ehr.backends.backend import FULL_MODE, Backend, BackendJob, JobContext, run_on_worker
from smpc_ehr.errors import Refusal
from smpc_ehr.securemath.ops import OutputShareSet, ProgressSink, SecureProgram
from smpc_ehr.transport.mesh import JobChannel

INSECURE_TFP_ENV = "SMPC_EHR_INSECURE_TFP_FOR_TESTS"
"""Set to 1 only by tests that run CrypTen without a dealer (trusted first party)."""


def insecure_tfp_allowed() -> bool:
    """Whether CrypTen's trusted-first-party provider may be used: tests only."""
    return os.environ.get(INSECURE_TFP_ENV) == "1"


class CryptenJob:
    """A CrypTen job: nothing is sent before the computation starts."""

    def __init__(self, channel: JobChannel, context: JobContext) -> None:
        self._channel = channel
        self._context = context

    async def run(
        self,
        program: SecureProgram,
        *,
        bits: int,
        round_seconds: float,
        on_progress: ProgressSink | None,
    ) -> OutputShareSet:
        """Runs on the worker thread (CrypTen blocks on the job's mailbox); progress
        notes are handed back to the event loop."""
        del bits  # CrypTen's integers are always 64-bit ring elements
        return await run_on_worker(
            self._context.worker,
            lambda progress: self._run(program, round_seconds, progress),
            on_progress,
        )

    def _run(
        self, program: SecureProgram, round_seconds: float, on_progress: ProgressSink
    ) -> OutputShareSet:
        from smpc_ehr.backends.crypten.job import run_crypten_job

        dealer = self._context.dealer
        return run_crypten_job(
            self._channel,
            program,
            round_seconds=round_seconds,
            dealer=(self._context.tls, dealer[0], dealer[1]) if dealer else None,
            on_progress=on_progress,
        )


class CryptenBackend(Backend):
    """Additive sharing over Z_2^64 with Beaver triples from the roster's dealer."""

    name = "crypten"
    min_parties = 2
    needs_dealer = True
    sharing = "additive"
    capabilities = frozenset({FULL_MODE})

    def check(self, n_parties: int, has_dealer: bool) -> None:
        if n_parties < self.min_parties:
            raise Refusal(
                f"the CrypTen backend needs at least {self.min_parties} parties, got {n_parties}"
            )
        if not has_dealer and not insecure_tfp_allowed():
            raise Refusal(
                "the CrypTen backend needs a dealer in the roster to supply Beaver triples; "
                "this federation has none (CrypTen's trusted-first-party alternative would "
                "let one hospital see every triple in the clear, so it is refused)"
            )

    def preload(self, worker: Executor) -> None:
        """Load torch and crypten now, while the other parties prepare."""
        worker.submit(importlib.import_module, "smpc_ehr.backends.crypten.job")

    def start(self, channel: JobChannel, context: JobContext) -> BackendJob:
        return CryptenJob(channel, context)
