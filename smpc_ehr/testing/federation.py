"""An in-process federation: the real party and coordinator job code in one event loop.

Each hospital is a real `JobRunner` behind its real `PartyServicer`, on an
`InMemoryMesh` (memory.py); the real `Coordinator` calls the servicers directly
(`ServicerClient`) instead of over gRPC. So a job goes through the production path:
the coordinator's checks of a submission, every party's Prepare against its policy,
every party's local step and secure program, the opening of the output shares and
the analysis's `release`. Only the computation is swapped: the jobs run on the
plaintext `ReferenceBackend` (backend.py), injected through the runners' and the
coordinator's backend lookup and standing in for the backend the job names, so the
reference never enters the production registry. What the real backends add (MPyC's
and CrypTen's protocols, TLS, processes) stays in the slow tier.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from smpc_ehr.config.coordinator import CoordinatorConfig
from smpc_ehr.config.party import PartyConfig
from smpc_ehr.config.roster import Member, Roster
from smpc_ehr.coordinator.jobs import FINAL_STATES, Coordinator, Job
from smpc_ehr.data.loader import load_party_data
from smpc_ehr.data.records import PartyData
from smpc_ehr.errors import JobAborted, JointRefusal, TransportError
from smpc_ehr.party.jobs import JobRunner
from smpc_ehr.party.service import PartyServicer
from smpc_ehr.policy.approval import DEFAULT_MIN_CELL_COUNT, PartyPolicy
from smpc_ehr.policy.privacy import PrivacyPolicy
from smpc_ehr.securemath.ops import SecureProgram
from smpc_ehr.study.template import ProtocolTemplate, load_template
from smpc_ehr.testing.backend import ReferenceBackend, run_program
from smpc_ehr.testing.memory import InMemoryMesh, ServicerClient, Switchboard, no_keys
from smpc_ehr.testing.reference import RefSecret

COORDINATOR = "coordinator"
ANALYST = "analyst"
JOB_SECONDS = 120.0
"""The coordinator's job deadline and the parties' longest accepted one."""
NOWHERE = Path("in-process")
"""What the configs name as their files: nothing in process reads them."""


class JobFailed(RuntimeError):
    """A job the coordinator reports as failed; the message is what the analyst reads."""


@dataclass(frozen=True)
class Hospital:
    """One in-process party: its data, its policy's small-cell minimum, its
    differential-privacy policy (its ledger lives under the federation's `state`) and
    whether it runs exact jobs over a subset of the hospitals. A `stopped` hospital is in
    the roster but does not answer: every call the coordinator makes to it fails (and is
    recorded in the federation's `stopped_calls`)."""

    id: str
    data: PartyData
    min_cell_count: int = DEFAULT_MIN_CELL_COUNT
    privacy: PrivacyPolicy = field(default_factory=PrivacyPolicy)
    allow_partial_jobs: bool = False
    stopped: bool = False


@dataclass
class Outcome:
    """A job's released result, with the progress notes the analyst saw on the way."""

    result: dict[str, Any]
    progress: list[tuple[str, int, int, str]] = field(default_factory=list)
    parties: tuple[str, ...] = ()
    """The hospitals the result covers, as the analyst's JobResult names them."""
    absent: tuple[str, ...] = ()
    cost: dict[str, Any] | None = None
    """The released cost (hops, and messages and bytes per party where released), as
    the coordinator gives it beside the result; counted by the real mesh code."""
    sent: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    """What each party reported it sent, (hops, messages, bytes), before the release
    cut it down: for tests showing what a withheld figure would tell."""


class InProcessFederation:
    """P hospitals in one process; `run` a protocol template like `smpc-ehr run` would."""

    def __init__(
        self, hospitals: Sequence[Hospital], seed: int = 0, state: Path | None = None
    ) -> None:
        """`state` holds one state folder per hospital (state/<id>, its privacy ledger),
        kept between runs; without it each run has fresh, temporary ones."""
        if not hospitals:
            raise ValueError("a federation needs at least one hospital")
        self.hospitals = list(hospitals)
        self.seed = seed
        self.state = state
        self.stopped_calls: list[str] = []
        """The calls the coordinator made to stopped hospitals ("id.Method"), all runs."""

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
        backend: str = "",
        parties: Sequence[str] = (),
    ) -> Outcome:
        """Submit a protocol template as an analyst would (every party approves it) and
        wait for the job; `backend` is the backend named in the submission (the
        template's by default), whose rules the job is checked against: the reference
        computes either way. `parties` names the participants (default: every
        hospital). Raises what `submit` raises (TemplateError, Refusal) and
        JobFailed with the coordinator's report of a failed job."""
        if not isinstance(template, ProtocolTemplate):
            template = load_template(template)
        raw = template.bind(dict(params or {})).encode()  # as the analyst's client sends them
        with tempfile.TemporaryDirectory(prefix="inprocess-state-") as scratch:
            state = Path(scratch) if self.state is None else self.state
            return asyncio.run(self._run(template, raw, backend, state, parties))

    async def _run(
        self,
        template: ProtocolTemplate,
        raw: dict[str, str],
        backend: str,
        state: Path,
        parties: Sequence[str],
    ) -> Outcome:
        reference = ReferenceBackend(self.seed)
        roster = self._roster()
        switchboard: Switchboard = {}
        runners: list[JobRunner] = []
        clients: dict[str, ServicerClient | _StoppedParty] = {}
        for hospital in self.hospitals:
            if hospital.stopped:
                clients[hospital.id] = _StoppedParty(hospital.id, self.stopped_calls)
                continue
            policy = PartyPolicy(
                min_cell_count=hospital.min_cell_count,
                approved_hashes=frozenset({template.canonical_hash}),
                approved_names={template.canonical_hash: template.name},
                max_job_seconds=JOB_SECONDS,
                privacy=hospital.privacy,
                allow_partial_jobs=hospital.allow_partial_jobs,
            )
            config = PartyConfig(
                hospital.id,
                roster,
                "",
                NOWHERE,
                NOWHERE,
                NOWHERE,
                policy,
                "INFO",
                NOWHERE,
                state / hospital.id,
            )
            mesh = InMemoryMesh(hospital.id, switchboard)
            runner = JobRunner(
                config, hospital.data, mesh, no_keys(hospital.id), reference.standing_in
            )
            runners.append(runner)
            clients[hospital.id] = ServicerClient(PartyServicer(config, runner, mesh), COORDINATOR)
        coordinator = Coordinator(
            CoordinatorConfig(
                COORDINATOR, roster, "", NOWHERE, NOWHERE, JOB_SECONDS, "INFO", NOWHERE
            ),
            no_keys(COORDINATOR),
            clients.__getitem__,
            reference.standing_in,
        )
        try:
            job = coordinator.submit(template.source_text, raw, backend, 0, ANALYST, parties)
            coordinator.start()
            await _finished(job)
        finally:
            await coordinator.close()
            for runner in runners:
                runner.shutdown()
        if job.state != "done" or job.result is None:
            raise JobFailed(job.error)
        progress = [
            (e.progress.stage, e.progress.step, e.progress.total, e.progress.message)
            for e in job.events
            if e.HasField("progress")
        ]
        sent = {p: (c.hops, c.messages, c.bytes_sent) for p, c in job.party_costs.items()}
        return Outcome(job.result, progress, tuple(job.parties), tuple(job.absent), job.cost, sent)

    def _roster(self) -> Roster:
        address = "127.0.0.1:1"  # never dialled
        return Roster(
            federation="in-process",
            ca_cert=NOWHERE,
            coordinator=Member(COORDINATOR, "coordinator", "Coordinator", address),
            dealer=None,
            parties=tuple(Member(h.id, "party", h.id, address) for h in self.hospitals),
            analysts=(Member(ANALYST, "analyst", "Analyst", None),),
            source=NOWHERE,
        )


class _StoppedParty:
    """A hospital whose process is down: each call fails as an unreachable one would."""

    def __init__(self, party: str, calls: list[str]) -> None:
        self._party = party
        self._calls = calls

    def _fail(self, method: str) -> NoReturn:
        self._calls.append(f"{self._party}.{method}")
        raise TransportError(f"{self._party} is stopped")

    async def Prepare(self, request: object, *, timeout: float, wait_for_ready: bool) -> Any:
        self._fail("Prepare")

    def Run(self, request: object, *, timeout: float) -> Any:
        self._fail("Run")

    async def Cancel(self, request: object, *, timeout: float) -> Any:
        self._fail("Cancel")


async def _finished(job: Job) -> None:
    while True:
        changed = job.changed
        if job.state in FINAL_STATES:
            return
        await changed.wait()


def execute(
    programs: Sequence[SecureProgram], bits: int = 32, seed: int = 0
) -> list[list[RefSecret]]:
    """Party i runs `programs[i]` on the reference over in-memory job channels (the
    backend's own `run_program`, one thread each), without analyses or coordinator:
    for tests of the reference itself. Returns every party's outputs; raises a joint
    refusal if one was raised, else the first failure that is not another's abort."""
    return asyncio.run(_execute(programs, bits, seed))


async def _execute(
    programs: Sequence[SecureProgram], bits: int, seed: int
) -> list[list[RefSecret]]:
    names = [f"party-{i}" for i in range(len(programs))]
    switchboard: Switchboard = {}
    meshes = [InMemoryMesh(name, switchboard) for name in names]
    deadline = time.monotonic() + JOB_SECONDS
    channels = [mesh.open_job("job", names, deadline) for mesh in meshes]
    loop = asyncio.get_running_loop()

    async def party(index: int, worker: ThreadPoolExecutor) -> list[RefSecret]:
        channel = channels[index]
        try:
            outputs = await loop.run_in_executor(
                worker, lambda: run_program(channel, programs[index], bits=bits, seed=seed)
            )
        except BaseException as exc:
            await channel.close(str(exc) or type(exc).__name__)
            raise
        await channel.close()
        return outputs

    with ThreadPoolExecutor(len(programs)) as worker:
        results = await asyncio.gather(
            *(party(i, worker) for i in range(len(programs))), return_exceptions=True
        )
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:
        joint = [f for f in failures if isinstance(f, JointRefusal)]
        own = [f for f in failures if not isinstance(f, JobAborted | TransportError)]
        raise (joint or own or failures)[0]
    return [r for r in results if not isinstance(r, BaseException)]
