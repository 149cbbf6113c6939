"""The MPyC backend as the registry sees it: honest majority, no dealer, Shamir shares.

Cheap to import: MPyC itself is loaded by `warm_up` (off the loop, when a party
starts) or by the first job.
"""

from __future__ import annotations

from smpc_ehr.backends.backend import Backend, BackendJob, JobContext
from smpc_ehr.errors import Refusal
from smpc_ehr.securemath.ops import OutputShareSet, ProgressSink, SecureProgram
from smpc_ehr.transport.mesh import JobChannel

MIN_PARTIES = 3


def check_party_count(n: int) -> None:
    """Refuse a job MPyC cannot run securely."""
    if n < MIN_PARTIES:
        raise Refusal(
            f"the MPyC backend needs at least {MIN_PARTIES} parties (honest majority); "
            f"with {n} its threshold would be 0 and any party could read every input"
        )


class MpycJob:
    """An MPyC job whose PRSS keys are already on their way to the peers."""

    def __init__(self, channel: JobChannel) -> None:
        from smpc_ehr.backends.mpyc import runtime

        self._channel = channel
        self._prss_keys = runtime.send_prss_keys(channel)

    async def run(
        self,
        program: SecureProgram,
        *,
        bits: int,
        round_seconds: float,
        on_progress: ProgressSink | None,
    ) -> OutputShareSet:
        from smpc_ehr.backends.mpyc import runtime

        return await runtime.run_job(
            self._channel,
            program,
            bits=bits,
            round_seconds=round_seconds,
            prss_keys=self._prss_keys,
            on_progress=on_progress,
        )


class MpycBackend(Backend):
    """Shamir sharing over a prime field, threshold (n-1)//2; runs in the event loop."""

    name = "mpyc"
    min_parties = MIN_PARTIES
    needs_dealer = False
    sharing = "shamir"
    capabilities = frozenset()

    def check(self, n_parties: int, has_dealer: bool) -> None:
        check_party_count(n_parties)

    def warm_up(self) -> None:
        from smpc_ehr.backends.mpyc.library import import_mpyc

        import_mpyc()  # a fraction of a second, so the first job does not pay for it

    def start(self, channel: JobChannel, context: JobContext) -> BackendJob:
        """Send this job's PRSS keys now (MPyC's `start()` would do it inside the MPC
        step): they travel while the party computes its local step, saving a round."""
        return MpycJob(channel)
