"""`smpc-ehr party`: load config and data, then serve the party service until stopped.

The party refuses to start on invalid data (the error names file, row and column)
so that nothing half-loaded is ever used in a computation.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from smpc_ehr import __version__
from smpc_ehr.audit.heads import HeadStore
from smpc_ehr.audit.trail import PROCESS_START, PROCESS_STOP, ROSTER_RELOAD
from smpc_ehr.backends import BACKENDS
from smpc_ehr.config.linkage_key import read_linkage_key
from smpc_ehr.config.party import PartyConfig
from smpc_ehr.config.roster import Roster
from smpc_ehr.data.linkage import with_link_tokens
from smpc_ehr.data.sources import open_store
from smpc_ehr.data.store import FileStore, version_key
from smpc_ehr.party.gossip import HeadGossip
from smpc_ehr.party.jobs import JobRunner
from smpc_ehr.party.service import PartyServicer
from smpc_ehr.pki.trust import deactivate as forget_roster
from smpc_ehr.pki.trust import watch as watch_roster
from smpc_ehr.transport.mesh import Mesh
from smpc_ehr.transport.server import serve_until_signalled, start_server
from smpc_ehr.transport.tls import TlsIdentity
from smpc_ehr.wire import party_pb2_grpc

log = logging.getLogger(__name__)

CRYPTEN_JOB_MODULE = "smpc_ehr.backends.crypten.job"
"""What the CrypTen backend's preload imports (CryptenBackend.preload)."""
STOP_GOSSIP_DEADLINE = 2.0
"""Seconds the last audit head (after the stop entry) may take to reach a peer."""


def start_fields(config: PartyConfig, port: int) -> dict[str, Any]:
    """The process_start entry: the version, the port, and the SHA-256 of the config and
    roster files in force, so that a change between two starts shows in the audit log."""

    def digest(path: Path) -> str:
        return hashlib.sha256(path.read_bytes()).hexdigest()

    return {
        "version": __version__,
        "port": port,
        "config_sha256": digest(config.source),
        "roster_sha256": digest(config.roster.source),
        "roster_version": config.roster.version,
    }


def peer_addresses(roster: Roster, me: str) -> dict[str, str]:
    """The other parties of `roster` and their addresses (those this party calls)."""
    return {p.id: str(p.address) for p in roster.parties if p.id != me and p.address}


async def serve(config: PartyConfig, on_ready: Callable[[int], None] | None = None) -> None:
    """Run one party until SIGTERM/SIGINT."""
    roster = config.roster
    # Certificate and key first (id, key pair): a wrong file is reported before data loads.
    tls = TlsIdentity.from_files(config.id, roster.ca_cert, config.cert, config.key, role="party")
    started = time.monotonic()
    key = None if config.linkage_key is None else read_linkage_key(config.linkage_key)
    store = open_store(  # link ids become keyed tokens as the rows are read
        config.data,
        version_key(config.state),
        prepare=None if key is None else lambda rows: with_link_tokens(rows, key),
    )
    first = store.open_job()  # a source that cannot be read stops the start, not a job
    try:  # files are loaded now anyway; a database is only connected to
        what = f"{first.rows().n_patients} patients" if isinstance(store, FileStore) else "data"
        log.info(
            "%s: %s at %s read in %.1f s (version %s); read again for each job",
            config.id,
            what,
            config.data,
            time.monotonic() - started,
            first.version,
        )
    finally:
        first.close()
    mesh = Mesh(tls, peer_addresses(roster, config.id))
    runner = JobRunner(config, store, mesh, tls)
    gossip = HeadGossip(
        tls,
        mesh,
        runner.audit,
        HeadStore(config.audit_heads_folder),
        list(peer_addresses(roster, config.id)),
        config.audit_gossip_seconds,
    )
    roster_watch = watch_roster(config.roster)
    roster_watch.on_cut(runner.abort_jobs_with)

    def roster_reloaded(fields: dict[str, Any]) -> None:
        runner.audit.note(ROSTER_RELOAD, fields)
        if fields["accepted"]:  # a new party, a moved one: reachable without a restart
            peers = peer_addresses(roster_watch.roster, config.id)
            mesh.set_addresses(peers)
            gossip.peers = list(peers)

    roster_watch.on_reload(roster_reloaded)
    runner.audit.on_job_end = gossip.send_soon
    servicer = PartyServicer(config, runner, mesh, gossip)
    server, port = await start_server(
        tls, config.listen, lambda s: party_pb2_grpc.add_PartyServicer_to_server(servicer, s)
    )
    # What each backend loads cheaply (MPyC) now, off the loop, so the first job does
    # not pay for it; CrypTen (torch: seconds and memory) too if the config asks for it,
    # else only when a CrypTen job arrives (its preload at Prepare).
    for backend in BACKENDS.values():
        threading.Thread(
            target=backend.warm_up, name=f"warm-up-{backend.name}", daemon=True
        ).start()
    if config.preload_crypten:
        threading.Thread(target=_preload_crypten, name="preload-crypten", daemon=True).start()
    log.info("%s: serving on port %d (mutual TLS)", config.id, port)
    audit = runner.audit
    audit.must(PROCESS_START, start_fields(config, port))
    log.info("%s: audit log %s", config.id, config.audit_log_path)
    starting = asyncio.ensure_future(gossip.send(level=logging.INFO))  # peers may be starting
    if on_ready is not None:
        on_ready(port)
    reason = "stopped by a signal"
    periodic = asyncio.ensure_future(gossip.run_periodically())
    try:
        await serve_until_signalled(server, runner.shutdown)
    except BaseException as exc:
        reason = f"stopped by an error: {exc!r}"
        raise
    finally:
        periodic.cancel()
        starting.cancel()
        await gossip.stop()
        store.close()
        audit.note(PROCESS_STOP, {"reason": reason})
        with contextlib.suppress(Exception):  # to peers that are still up
            await gossip.send(STOP_GOSSIP_DEADLINE, logging.INFO)
        await mesh.close()
        forget_roster()


def _preload_crypten() -> None:
    """Import the CrypTen backend's job module (torch, crypten) in the background."""
    started = time.monotonic()
    try:
        importlib.import_module(CRYPTEN_JOB_MODULE)
    except Exception as exc:  # e.g. not installed: the first CrypTen job fails, saying why
        log.warning("CrypTen not preloaded (preload_crypten = true): %s", exc)
        return
    log.info("CrypTen backend loaded in %.1f s", time.monotonic() - started)


def run(config: PartyConfig) -> None:
    """Blocking entry point for the CLI."""
    asyncio.run(serve(config))
