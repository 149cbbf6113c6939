"""The worker processes of `bench.py transport` (and logreg-full's baseline): a group
whose JSON-line events arrive on one queue and that is always stopped, and the
federation identities (roster, CA, certificates, dealer config) the workers use."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from benchsuite.harness import log, worker_command, worker_env

DEALER_ID = "dealer"
UNUSED_ADDRESS = "127.0.0.1:1"
"""Roster addresses are never dialled here: every server binds port 0 and the driver
hands the real addresses to the parties."""
STOP_GRACE = 5.0
THREADS_PER_PROCESS = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
"""One torch compute thread per process on both sides: 3 parties and a dealer (or TTP)
share the machine's cores, and torch's default of one spinning OpenMP thread per core
in every process oversubscribes them and makes the timings erratic."""


# --- processes ------------------------------------------------------------------------


class WorkerError(RuntimeError):
    """A worker failed, exited early or did not answer in time."""


@dataclass
class _Process:
    name: str
    popen: subprocess.Popen[str]
    log_path: Path

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return "(no log)"
        return "\n".join(f"    {line}" for line in text)


class Group:
    """Worker processes whose events arrive on one queue; all stopped on leaving."""

    def __init__(self, log_dir: Path, module: str) -> None:
        self._log_dir = log_dir
        self._module = module
        self._processes: dict[str, _Process] = {}
        self._events: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()

    def spawn(self, name: str, role: str, spec: Path, rank: int = 0) -> None:
        log_path = self._log_dir / f"{name}.log"
        with open(log_path, "ab") as err:
            popen = subprocess.Popen(
                worker_command(self._module, role, "--spec", str(spec), "--rank", str(rank)),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                start_new_session=True,  # Ctrl-C reaches the driver only; it stops us
                env=worker_env(**THREADS_PER_PROCESS),
            )
        self._processes[name] = _Process(name, popen, log_path)
        assert popen.stdout is not None
        threading.Thread(target=self._read, args=(name, popen.stdout), daemon=True).start()

    def _read(self, name: str, stream: IO[str]) -> None:
        for line in stream:
            try:
                self._events.put((name, json.loads(line)))
            except ValueError:
                log(f"{name}: {line.rstrip()}")
        self._events.put((name, {"event": "exited"}))

    def send_all(self, **message: Any) -> None:
        for process in self._processes.values():
            assert process.popen.stdin is not None
            process.popen.stdin.write(json.dumps(message) + "\n")
            process.popen.stdin.flush()

    def collect(self, event: str, timeout: float) -> dict[str, dict[str, Any]]:
        """Wait for `event` from every process; fail at once if any fails or exits first."""
        got: dict[str, dict[str, Any]] = {}
        end = time.monotonic() + timeout
        while len(got) < len(self._processes):
            try:
                name, message = self._events.get(timeout=max(0.0, end - time.monotonic()))
            except queue.Empty:
                missing = sorted(set(self._processes) - set(got))
                raise WorkerError(
                    f"no {event!r} within {timeout:g} s from {', '.join(missing)}\n"
                    + "\n".join(f"  {n}:\n{self._processes[n].tail()}" for n in missing)
                ) from None
            process = self._processes[name]
            kind = message.get("event")
            if kind == event:
                got[name] = message
            elif kind == "exited" and name in got:
                continue
            elif kind == "error":
                raise WorkerError(f"{name} failed: {message['message']}\n{process.tail()}")
            elif kind == "exited":
                code = process.popen.wait(STOP_GRACE)
                raise WorkerError(f"{name} exited (code {code}) before {event!r}\n{process.tail()}")
        return got

    def stop(self) -> None:
        """Terminate every process still running (SIGTERM, then SIGKILL after a grace)."""
        for process in self._processes.values():
            if process.popen.stdin is not None:
                with suppress(OSError):
                    process.popen.stdin.close()
            if process.popen.poll() is None:
                process.popen.terminate()
        end = time.monotonic() + STOP_GRACE
        for process in self._processes.values():
            try:
                process.popen.wait(max(0.0, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.popen.kill()
                process.popen.wait()


@contextmanager
def group(log_dir: Path, module: str) -> Iterator[Group]:
    """Worker processes running `benchsuite.<module>`, all stopped on leaving."""
    workers = Group(log_dir, module)
    try:
        yield workers
    finally:
        workers.stop()


# --- the federation's identities ------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    certs: Path
    dealer_config: Path


def make_pki(folder: Path, parties: Sequence[str]) -> Pki:
    """A roster (coordinator, dealer, parties), a fresh CA and a certificate per identity,
    and the dealer's config, as smpc_ehr/local/federation.py makes them."""
    from smpc_ehr.config.dealer import write_dealer_config
    from smpc_ehr.config.roster import Member, Roster, write_roster
    from smpc_ehr.pki.certs import init_federation_pki

    roster = Roster(
        federation="bench-transport",
        ca_cert=folder / "certs" / "ca.pem",
        coordinator=Member("coordinator", "coordinator", "Coordinator", UNUSED_ADDRESS),
        dealer=Member(DEALER_ID, "dealer", "Dealer", UNUSED_ADDRESS),
        parties=tuple(Member(p, "party", p, UNUSED_ADDRESS) for p in parties),
        analysts=(),
        source=folder / "roster.toml",
    )
    write_roster(roster, roster.source)
    pki = init_federation_pki(roster, folder / "certs", force=True)
    dealer_config = write_dealer_config(
        folder / "dealer.toml",
        id=DEALER_ID,
        roster=roster.source,
        key=pki.key_for(DEALER_ID),
        cert=pki.cert_for(DEALER_ID),
        listen="127.0.0.1:0",
        log_level="WARNING",
    )
    return Pki(folder / "certs", dealer_config)
