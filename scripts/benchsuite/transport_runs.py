"""The runner of `bench.py transport` (and of logreg-full's baseline): one run of one
side, a backend over the project's mesh or over its own transport, in worker processes
(workers.py), timed by the parties' own spans."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchsuite import transport_programs as programs
from benchsuite.harness import party_ids
from benchsuite.workers import DEALER_ID, Pki, group

WORKER = "transport_worker"
"""The module the worker processes run (benchsuite.<WORKER>)."""
PARTIES = 3
SETUP_SECONDS = 120.0
"""Longest wait for a process to start (import torch, bind, connect)."""


@dataclass(frozen=True)
class Config:
    quick: bool
    repeats: int
    backends: tuple[str, ...]
    crypten: programs.CryptenSizes
    mpyc: programs.MpycSizes
    seed: int
    deadline_seconds: float
    round_seconds: float
    mpyc_own_args: tuple[str, ...] = ()
    """Extra MPyC options on its own transport (diagnosis: `--mpyc-mix32-64bit`)."""


@dataclass
class Run:
    """What one run (one side, one repetition) measured and opened."""

    seconds: dict[str, float]
    """Per program: the slowest party's end minus the earliest party's start."""
    cpu: dict[str, float]
    """Per program: CPU seconds the party processes used in their spans, summed."""
    values: dict[str, Any]
    load: float
    """The machine's 1-minute load average when the run started (other users' work)."""
    traffic: dict[str, Any] | None = None


@dataclass
class Bench:
    cfg: Config
    workdir: Path
    pki: Pki
    dealer_address: str | None
    worker: str = WORKER
    """The module its worker processes run (benchsuite.<worker>)."""
    counter: int = 0

    def spec(self, **extra: Any) -> Path:
        self.counter += 1
        spec = {
            "parties": party_ids(PARTIES),
            "certs": str(self.pki.certs),
            "seed": self.cfg.seed,
            "mpyc": vars(self.cfg.mpyc),
            "crypten": vars(self.cfg.crypten),
            "deadline_seconds": self.cfg.deadline_seconds,
            "setup_seconds": SETUP_SECONDS,
            "round_seconds": self.cfg.round_seconds,
            "job_id": f"bench-{uuid.uuid4().hex}",
            "dealer_id": DEALER_ID,
            "dealer_address": self.dealer_address,
            "dealer_config": str(self.pki.dealer_config),
            **extra,
        }
        path = self.workdir / f"spec-{self.counter}.json"
        path.write_text(json.dumps(spec))
        return path

    def logs(self) -> Path:
        folder = self.workdir / f"logs-{self.counter}"
        folder.mkdir()
        return folder

    def mesh(self, backend: str) -> Run:
        spec = self.spec()
        load = os.getloadavg()[0]
        with group(self.logs(), self.worker) as workers:
            for rank in range(PARTIES):
                workers.spawn(f"{backend}-mesh-{rank}", f"{backend}-mesh", spec, rank)
            ports = workers.collect("listening", SETUP_SECONDS)
            addresses = {
                party: f"127.0.0.1:{ports[f'{backend}-mesh-{rank}']['port']}"
                for rank, party in enumerate(party_ids(PARTIES))
            }
            workers.send_all(addresses=addresses)
            workers.collect("ready", SETUP_SECONDS)
            workers.send_all(go=True)
            results = workers.collect("result", self.cfg.deadline_seconds + SETUP_SECONDS)
        return _run_of(results, f"{backend}-mesh-", load)

    def mpyc_own(self) -> Run:
        from smpc_ehr.local.federation import free_port

        load = os.getloadavg()[0]
        ports = [free_port() for _ in range(PARTIES)]
        spec = self.spec(mpyc_ports=ports, mpyc_own_args=list(self.cfg.mpyc_own_args))
        with group(self.logs(), self.worker) as workers:
            for rank in range(PARTIES):
                workers.spawn(f"mpyc-own-{rank}", "mpyc-own", spec, rank)
            results = workers.collect("result", self.cfg.deadline_seconds + SETUP_SECONDS)
        return _run_of(results, "mpyc-own-", load)

    def crypten_own(self) -> Run:
        load = os.getloadavg()[0]
        spec = self.spec(rendezvous=str(self.workdir / f"rendezvous-{uuid.uuid4().hex}"))
        with group(self.logs(), self.worker) as workers:
            workers.spawn("crypten-ttp", "crypten-ttp", spec)
            for rank in range(PARTIES):
                workers.spawn(f"crypten-own-{rank}", "crypten-own", spec, rank)
            results = workers.collect("result", self.cfg.deadline_seconds + SETUP_SECONDS)
        return _run_of(results, "crypten-own-", load)

    def side(self, backend: str, side: str) -> Run:
        if side == "mesh":
            return self.mesh(backend)
        return self.mpyc_own() if backend == "mpyc" else self.crypten_own()


def _run_of(results: dict[str, dict[str, Any]], prefix: str, load: float) -> Run:
    """Spans of the slowest party, and the opened values (which every party must agree on)."""
    parties = [results[name] for name in sorted(results) if name.startswith(prefix)]
    spans: dict[str, list[programs.Span]] = {}
    for result in parties:
        for program, (start, end, cpu) in result["spans"].items():
            spans.setdefault(program, []).append(programs.Span(start, end, cpu))
    seconds = {
        name: max(s.end for s in each) - min(s.start for s in each) for name, each in spans.items()
    }
    cpu = {name: sum(s.cpu for s in each) for name, each in spans.items()}
    values = parties[0]["values"]
    if any(p["values"] != values for p in parties[1:]):
        values = {"disagreement": [p["values"] for p in parties]}
    return Run(seconds, cpu, values, load, parties[0].get("mesh"))


@contextmanager
def dealer(bench: Bench) -> Iterator[None]:
    """The federation's dealer for the CrypTen mesh runs, for the whole benchmark."""
    logs = bench.workdir / "dealer-logs"
    logs.mkdir()
    with group(logs, bench.worker) as workers:
        workers.spawn("dealer", "dealer", bench.spec())
        port = workers.collect("listening", SETUP_SECONDS)["dealer"]["port"]
        bench.dealer_address = f"127.0.0.1:{port}"
        yield


Runs = dict[str, dict[str, list[Run]]]
"""Runs by backend, then side ("mesh" or "own"), in repetition order."""
