"""The plaintext reference as a `Backend`, for the in-process federation only.

It is never in the production registry (`smpc_ehr.backends.BACKENDS`): the in-process
federation hands it to the party's `JobRunner` and the `Coordinator` through their
`backends` lookup, standing in for whichever registered backend a job names, so a
template or config can never select it. A job runs the secure program on the job's
worker thread over `ReferenceOps` meeting the peers on the job's channel, checks that
every party ends with the same outputs, and returns additive shares of them in
Z_2^64, which the coordinator opens like CrypTen's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import numpy as np

from smpc_ehr.backends import get_backend
from smpc_ehr.backends.backend import Backend, BackendJob, JobContext, run_on_worker
from smpc_ehr.securemath.ops import (
    MixedOutputsError,
    OutputShareSet,
    ProgressSink,
    Secret,
    SecureProgram,
)
from smpc_ehr.testing.reference import ChannelMeeting, ReferenceFailure, ReferenceOps, RefSecret
from smpc_ehr.transport.mesh import JobChannel

ADDITIVE_MODULUS = 2**64
"""The reference's output shares are additive in Z_2^64 (opened as "additive")."""


def run_program(
    channel: JobChannel,
    program: SecureProgram,
    *,
    bits: int = 32,
    seed: int = 0,
    round_seconds: float = 30.0,
    on_progress: ProgressSink | None = None,
    backend: str = "mpyc",
) -> list[RefSecret]:
    """Blocking: this party's side of `program` on `ReferenceOps` (standing in for
    `backend`) over `channel`; its outputs, once every party has shown the same ones
    (else ReferenceFailure)."""
    meeting = ChannelMeeting(channel, round_seconds)
    ops = ReferenceOps(meeting, channel.my_index, bits=bits, seed=seed, backend=backend)
    ops.progress_sink = on_progress
    outputs = [_checked(s) for s in asyncio.run(program(ops))]
    shown = [np.asarray(s.value, dtype=float).reshape(-1) for s in outputs]
    everyone = meeting.exchange(
        channel.my_index,
        ("outputs", tuple(s.shape for s in outputs), tuple(s.frac for s in outputs)),
        np.concatenate(shown) if shown else np.zeros(0),
    )
    if any(not np.array_equal(part, everyone[0]) for part in everyone):
        raise ReferenceFailure("the parties' outputs differ (their programs drifted apart)")
    return outputs


def _checked(secret: Secret) -> RefSecret:
    if not isinstance(secret, RefSecret):
        raise TypeError(f"a secure program returned {type(secret).__name__}, not a secret")
    return secret


def output_shares(
    outputs: Sequence[RefSecret], my_index: int, n_parties: int, seed: int = 0
) -> OutputShareSet:
    """Party `my_index`'s additive shares of the outputs' encodings (one kind of outputs
    only, as on a real backend): the parties draw the same random shares from `seed`."""
    fracs = {s.frac for s in outputs}
    if len(fracs) > 1:
        raise MixedOutputsError()
    frac = fracs.pop() if fracs else 0
    flat = [float(v) for s in outputs for v in np.asarray(s.value, dtype=float).reshape(-1)]
    remainder = [round(v * 2**frac) % ADDITIVE_MODULUS for v in flat]
    rng = np.random.default_rng(seed)
    mine: list[int] = []
    for index in range(n_parties - 1):
        part = [int(x) for x in rng.integers(0, 2**63, size=len(flat), dtype=np.uint64)]
        remainder = [(r - x) % ADDITIVE_MODULUS for r, x in zip(remainder, part, strict=True)]
        if index == my_index:
            mine = part
    return OutputShareSet(
        scheme=ReferenceBackend.sharing,
        modulus=ADDITIVE_MODULUS,
        point=my_index + 1,
        degree=0,
        values=remainder if my_index == n_parties - 1 else mine,
        public_meta={"frac_bits": str(frac)},
    )


class ReferenceJob:
    """One job on the reference: nothing is sent before the program runs."""

    def __init__(self, channel: JobChannel, context: JobContext, seed: int, backend: str) -> None:
        self._channel = channel
        self._context = context
        self._seed = seed
        self._backend = backend

    async def run(
        self,
        program: SecureProgram,
        *,
        bits: int,
        round_seconds: float,
        on_progress: ProgressSink | None,
    ) -> OutputShareSet:
        """On the job's worker thread (the reference blocks on the job's mailbox, like
        CrypTen); progress notes are handed back to the event loop."""

        def compute(progress: ProgressSink) -> OutputShareSet:
            outputs = run_program(
                self._channel,
                program,
                bits=bits,
                seed=self._seed,
                round_seconds=round_seconds,
                on_progress=progress,
                backend=self._backend,
            )
            channel = self._channel
            return output_shares(outputs, channel.my_index, len(channel.parties), self._seed)

        return await run_on_worker(self._context.worker, compute, on_progress)


class ReferenceBackend(Backend):
    """Plaintext, any number of parties, no dealer: a stand-in for tests only."""

    name = "reference"
    min_parties = 1
    needs_dealer = False
    sharing = "additive"

    def __init__(self, seed: int = 0, stands_for: str = "mpyc") -> None:
        self.seed = seed
        self.stands_for = stands_for
        """The backend whose name the ops carry (its collusion threshold calibrates noise)."""

    def start(self, channel: JobChannel, context: JobContext) -> BackendJob:
        return ReferenceJob(channel, context, self.seed, self.stands_for)

    def standing_in(self, name: str) -> Backend:
        """The lookup the in-process federation injects: any backend this build has
        (a job naming another is refused as in production) runs on the reference; the
        analyses' own backend rules (`validate_backend`) and the ops (`SecureOps.backend`)
        still see the name."""
        get_backend(name)
        return self if name == self.stands_for else ReferenceBackend(self.seed, name)
