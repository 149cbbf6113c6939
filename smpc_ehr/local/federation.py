"""`smpc-ehr local up/down`: a coordinator, a dealer and one party per data folder, as processes.

Everything a real deployment has is here too: a roster, a CA and one certificate
per identity, a config per process, mutual TLS on every connection. The dealer is
started too (id "dealer"), so CrypTen jobs can run; MPyC jobs never call it. Only the
convenience differs: ports are picked free on 127.0.0.1, every party approves the
templates of a protocols folder, and the state folder records what `smpc-ehr run
--state` and `local down` need (state.json, configs, certificates, logs), and each
party's audit log (audit/<id>.jsonl).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from smpc_ehr.config.analyst import LOCAL_ANALYST_CONFIG, write_analyst_config
from smpc_ehr.config.coordinator import write_coordinator_config
from smpc_ehr.config.dealer import write_dealer_config
from smpc_ehr.config.linkage_key import new_linkage_key
from smpc_ehr.config.party import write_party_config
from smpc_ehr.config.roster import Member, Roster, load_roster, write_roster
from smpc_ehr.config.roster_sig import sign_roster
from smpc_ehr.data.sources import SOURCE_FILE, has_link_ids
from smpc_ehr.errors import ConfigError, SmpcEhrError
from smpc_ehr.pki.certs import init_federation_pki
from smpc_ehr.policy.approval import DEFAULT_MIN_CELL_COUNT
from smpc_ehr.policy.privacy import PrivacyPolicy
from smpc_ehr.transport.tls import TlsIdentity
from smpc_ehr.wire import coordinator_pb2_grpc, dealer_pb2_grpc, party_pb2, party_pb2_grpc

COORDINATOR_ID = "coordinator"
DEALER_ID = "dealer"
ANALYST_ID = "analyst"
STATE_FILE = "state.json"
PORT_ATTEMPTS = 3


@dataclass(frozen=True)
class Placement:
    """Where each member of a local federation runs: its host address (default
    127.0.0.1) and the command prefix that starts it there (default none), e.g.
    `ip netns exec NS` for a network namespace of a multi-host test; optionally the
    host the roster names instead (a relay in front of the member: the WAN benchmark)
    and a fixed port (default: a free one)."""

    hosts: Mapping[str, str] = field(default_factory=dict)
    prefixes: Mapping[str, Sequence[str]] = field(default_factory=dict)
    advertised: Mapping[str, str] = field(default_factory=dict)
    ports: Mapping[str, int] = field(default_factory=dict)

    def host(self, ident: str) -> str:
        return self.hosts.get(ident, "127.0.0.1")

    def listen(self, ident: str, port: int) -> str:
        """The address `ident` listens on."""
        return f"{self.host(ident)}:{port}"

    def roster_address(self, ident: str, port: int) -> str:
        """The address the others dial to reach `ident` (the roster's)."""
        return f"{self.advertised.get(ident, self.host(ident))}:{port}"

    def port(self, ident: str) -> int:
        return self.ports.get(ident) or free_port()

    def prefix(self, ident: str) -> list[str]:
        return list(self.prefixes.get(ident, ()))


class _PortTaken(SmpcEhrError):
    """A process could not bind the free port chosen for it."""


@dataclass(frozen=True)
class LocalFederation:
    """What `local up` started, as recorded in STATE_DIR/state.json."""

    state_dir: Path
    pids: dict[str, int]
    addresses: dict[str, str]

    @property
    def analyst_config(self) -> Path:
        return self.state_dir / LOCAL_ANALYST_CONFIG

    @classmethod
    def load(cls, state_dir: Path) -> LocalFederation:
        path = Path(state_dir) / STATE_FILE
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError as exc:
            raise ConfigError(f"no local federation is recorded in {state_dir}") from exc
        return cls(Path(state_dir), data["pids"], data["addresses"])

    def save(self) -> None:
        record = {"pids": self.pids, "addresses": self.addresses}
        (self.state_dir / STATE_FILE).write_text(json.dumps(record, indent=2) + "\n")


def party_config_path(state_dir: Path, party: str) -> Path:
    """Where `local up` writes a party's config."""
    return Path(state_dir) / f"{party}.toml"


def audit_log_path(state_dir: Path, party: str) -> Path:
    """Where a local federation's party keeps its audit log: STATE/audit/<id>.jsonl."""
    return Path(state_dir) / "audit" / f"{party}.jsonl"


def party_configs(state_dir: Path) -> list[Path]:
    """The party configs of the local federation in `state_dir`, in roster order (also
    after `local down`: the configs and the parties' state folders stay)."""
    roster = Path(state_dir) / "roster.toml"
    if not roster.exists():
        raise ConfigError(f"no local federation in {state_dir}: start one with `smpc-ehr local up`")
    return [party_config_path(state_dir, p) for p in load_roster(roster).party_ids()]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def data_folders(data: Path) -> list[Path]:
    """One folder per party: every subfolder of `data` holding a patients file or a
    `source.toml` (data/sources.py)."""
    held = ("patients.csv", "patients.parquet", SOURCE_FILE)
    folders = sorted(
        p for p in Path(data).iterdir() if p.is_dir() and any((p / f).exists() for f in held)
    )
    if not folders:
        raise ConfigError(
            f"{data} has no party folders (subfolders with patients.csv or source.toml)"
        )
    return folders


def up(
    data: Path,
    state_dir: Path,
    protocols: Path | None = None,
    approve: list[Path] | None = None,
    min_cell_count: int = DEFAULT_MIN_CELL_COUNT,
    timeout: float = 60.0,
    more_analysts: tuple[str, ...] = (),
    coordinator_settings: dict[str, Any] | None = None,
    privacy: PrivacyPolicy | None = None,
    allow_partial: bool = False,
    placement: Placement | None = None,
) -> LocalFederation:
    """Write roster, certificates and configs into `state_dir`, start every process and
    wait until all answer a health check. On any failure, stops what it started.

    `privacy` is every party's differential-privacy policy (default: exact runs allowed,
    no budget); each party keeps its ledger in state_dir/state/<id>, which `local down`
    leaves in place, so a budget stays spent over `local down` and `local up`.

    `state_dir/analyst.toml` is the config of analyst "analyst"; `more_analysts` adds
    identities (certificates only) for trying what one analyst may see of another's jobs;
    `coordinator_settings` are more keyword arguments of `write_coordinator_config`;
    `allow_partial` sets every party's `allow_partial_jobs` (exact jobs over a subset);
    `placement` runs members elsewhere than on 127.0.0.1 (the multi-host test).
    """
    state_dir = Path(state_dir).resolve()
    if (state_dir / STATE_FILE).exists():
        raise ConfigError(
            f"a local federation is already recorded in {state_dir}; "
            f"run `smpc-ehr local down --state {state_dir}` first"
        )
    folders = data_folders(Path(data).resolve())
    approved = sorted(p.resolve() for p in Path(protocols).glob("*.toml")) if protocols else []
    approved += [Path(p).resolve() for p in approve or []]
    for _ in range(PORT_ATTEMPTS):
        try:
            return _start(
                folders,
                state_dir,
                approved,
                min_cell_count,
                timeout,
                more_analysts,
                coordinator_settings or {},
                privacy,
                allow_partial,
                placement or Placement(),
            )
        except _PortTaken:
            continue  # another program took a port between choosing and binding it
    raise SmpcEhrError(f"could not bind free ports on 127.0.0.1 in {PORT_ATTEMPTS} attempts")


def local_linkage_key(state_dir: Path, folders: list[Path]) -> Path | None:
    """A fresh linkage key for the parties (config/linkage_key.py) when any data folder
    has link ids, in the state folder beside the certificates; None if none has. (One
    file all local parties read: in a real federation each hospital keeps its copy.)"""
    if not any(has_link_ids(folder) for folder in folders):
        return None
    return new_linkage_key(state_dir / "certs" / "linkage.key", force=True)


def _start(
    folders: list[Path],
    state_dir: Path,
    approved: list[Path],
    min_cell_count: int,
    timeout: float,
    more_analysts: tuple[str, ...],
    coordinator_settings: dict[str, Any],
    privacy: PrivacyPolicy | None,
    allow_partial: bool,
    placement: Placement,
) -> LocalFederation:
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "logs").mkdir(exist_ok=True)

    ports: dict[str, int] = {}

    def member(role: str, ident: str, name: str) -> Member:
        ports[ident] = placement.port(ident)
        return Member(ident, role, name, placement.roster_address(ident, ports[ident]))

    def listen(ident: str) -> str:
        return placement.listen(ident, ports[ident])

    coordinator = member("coordinator", COORDINATOR_ID, "Coordinator")
    dealer = member("dealer", DEALER_ID, "Dealer")
    roster = Roster(
        federation="local",
        ca_cert=state_dir / "certs" / "ca.pem",
        coordinator=coordinator,
        dealer=dealer,
        parties=tuple(member("party", f.name, f.name) for f in folders),
        analysts=tuple(
            Member(ident, "analyst", ident, None) for ident in (ANALYST_ID, *more_analysts)
        ),
        source=state_dir / "roster.toml",
        version=1,
    )
    write_roster(roster, roster.source)
    pki = init_federation_pki(roster, state_dir / "certs", force=True)
    sign_roster(roster.source, pki.ca_key)  # roster.toml.sig: members refuse an altered roster
    configs: dict[str, tuple[str, Path]] = {}
    linkage = local_linkage_key(state_dir, folders)
    for party, folder in zip(roster.parties, folders, strict=True):
        configs[party.id] = (
            "party",
            write_party_config(
                party_config_path(state_dir, party.id),
                id=party.id,
                roster=roster.source,
                key=pki.key_for(party.id),
                cert=pki.cert_for(party.id),
                data=folder,
                listen=listen(party.id),
                min_cell_count=min_cell_count,
                approved_protocols=approved,
                privacy=privacy,
                allow_partial_jobs=allow_partial,
                audit_log=audit_log_path(state_dir, party.id),
                linkage_key=linkage,
            ),
        )
    configs[COORDINATOR_ID] = (
        "coordinator",
        write_coordinator_config(
            state_dir / "coordinator.toml",
            id=COORDINATOR_ID,
            roster=roster.source,
            key=pki.key_for(COORDINATOR_ID),
            cert=pki.cert_for(COORDINATOR_ID),
            listen=listen(COORDINATOR_ID),
            **coordinator_settings,
        ),
    )
    configs[DEALER_ID] = (
        "dealer",
        write_dealer_config(
            state_dir / "dealer.toml",
            id=DEALER_ID,
            roster=roster.source,
            key=pki.key_for(DEALER_ID),
            cert=pki.cert_for(DEALER_ID),
            listen=listen(DEALER_ID),
        ),
    )
    write_analyst_config(
        LocalFederation(state_dir, {}, {}).analyst_config,
        id=ANALYST_ID,
        roster=roster.source,
        key=pki.key_for(ANALYST_ID),
        cert=pki.cert_for(ANALYST_ID),
    )
    addresses = {m.id: str(m.address) for m in roster.members() if m.address}
    federation = LocalFederation(state_dir, {}, addresses)
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for ident, (role, config) in configs.items():
            log = state_dir / "logs" / f"{ident}.log"
            processes[ident] = _spawn(role, config, log, placement.prefix(ident))
            federation.pids[ident] = processes[ident].pid
        federation.save()
        analyst = TlsIdentity.from_files(
            ANALYST_ID, pki.ca_cert, pki.cert_for(ANALYST_ID), pki.key_for(ANALYST_ID)
        )
        _wait_healthy(federation, processes, timeout, analyst)
    except BaseException:
        down(state_dir, quiet=True)
        raise
    return federation


def _spawn(
    role: str, config: Path, log: Path, prefix: Sequence[str] = ()
) -> subprocess.Popen[bytes]:
    """Start one process in its own session, so the terminal's Ctrl-C does not reach it;
    `prefix` (a command that then executes it, as `ip netns exec NS`) places it."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            [*prefix, sys.executable, "-m", "smpc_ehr", role, "--config", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _wait_healthy(
    federation: LocalFederation,
    processes: dict[str, subprocess.Popen[bytes]],
    timeout: float,
    tls: TlsIdentity,
) -> None:
    state = federation.state_dir
    waiting = dict(federation.addresses)
    end = time.monotonic() + timeout
    while waiting:
        for ident in list(waiting):
            code = processes[ident].poll()
            if code is not None:
                log_tail = _tail(state / "logs" / f"{ident}.log", lines=5)
                if "the port is in use" in log_tail:
                    raise _PortTaken(ident)
                raise SmpcEhrError(f"{ident} exited with code {code} while starting:\n{log_tail}")
            if health(tls, ident, waiting[ident], timeout=1.0) is not None:
                del waiting[ident]
        if waiting and time.monotonic() > end:
            raise SmpcEhrError(
                f"not healthy after {timeout:g} s: {', '.join(sorted(waiting))} "
                f"(logs in {state / 'logs'})"
            )
        if waiting:
            time.sleep(0.2)


def health(
    tls: TlsIdentity, ident: str, address: str, timeout: float = 2.0
) -> party_pb2.HealthReply | None:
    """The health reply of the party, coordinator or dealer `ident`, or None if it does not
    answer (all three services share the Health call)."""
    with tls.blocking_channel(address, ident) as channel:
        stub: (
            party_pb2_grpc.PartyStub
            | coordinator_pb2_grpc.CoordinatorStub
            | dealer_pb2_grpc.DealerStub
        )
        if ident == COORDINATOR_ID:
            stub = coordinator_pb2_grpc.CoordinatorStub(channel)
        elif ident == DEALER_ID:
            stub = dealer_pb2_grpc.DealerStub(channel)
        else:
            stub = party_pb2_grpc.PartyStub(channel)
        try:
            reply: party_pb2.HealthReply = stub.Health(party_pb2.HealthRequest(), timeout=timeout)
            return reply
        except grpc.RpcError:
            return None


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def down(state_dir: Path, timeout: float = 10.0, quiet: bool = False) -> list[str]:
    """Stop every process of the local federation (SIGTERM, then SIGKILL after `timeout`)."""
    try:
        federation = LocalFederation.load(Path(state_dir).resolve())
    except ConfigError:
        if quiet:
            return []
        raise
    stopped = []
    for ident, pid in federation.pids.items():
        try:
            os.kill(pid, signal.SIGTERM)
            stopped.append(ident)
        except ProcessLookupError:
            pass
    end = time.monotonic() + timeout
    for pid in federation.pids.values():
        while is_running(pid) and time.monotonic() < end:
            time.sleep(0.05)
        if is_running(pid):
            os.kill(pid, signal.SIGKILL)
    (federation.state_dir / STATE_FILE).unlink(missing_ok=True)
    return stopped


def is_running(pid: int) -> bool:
    """True while `pid` runs (a zombie child of ours is reaped and counts as gone)."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def restart(state_dir: Path, ident: str, timeout: float = 60.0) -> LocalFederation:
    """Start one stopped member of the local federation in `state_dir` again, with its
    config as it is now (after a crash, or to take up a changed policy), and wait until
    it answers. The others keep running: a job that does not name a stopped party
    never waits on it."""
    from smpc_ehr.config.analyst import load_analyst_config

    federation = LocalFederation.load(Path(state_dir).resolve())
    state = federation.state_dir
    if ident not in federation.addresses:
        raise ConfigError(f"{ident} is not a member of the local federation in {state}")
    pid = federation.pids.get(ident)
    if pid is not None and is_running(pid):
        raise ConfigError(f"{ident} is still running (pid {pid}); stop it first")
    if ident in (COORDINATOR_ID, DEALER_ID):
        role, config = ident, state / f"{ident}.toml"
    else:
        role, config = "party", party_config_path(state, ident)
    process = _spawn(role, config, state / "logs" / f"{ident}.log")
    federation.pids[ident] = process.pid
    federation.save()
    analyst = load_analyst_config(federation.analyst_config)
    tls = TlsIdentity.from_files(ANALYST_ID, analyst.roster.ca_cert, analyst.cert, analyst.key)
    alone = LocalFederation(state, {ident: process.pid}, {ident: federation.addresses[ident]})
    _wait_healthy(alone, {ident: process}, timeout, tls)
    return federation
