"""`smpc-ehr coordinator`: serve the coordinator service until stopped."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from smpc_ehr.config.coordinator import CoordinatorConfig
from smpc_ehr.coordinator.jobs import Coordinator
from smpc_ehr.coordinator.service import CoordinatorServicer
from smpc_ehr.pki.trust import deactivate as forget_roster
from smpc_ehr.pki.trust import watch as watch_roster
from smpc_ehr.transport.server import serve_until_signalled, start_server
from smpc_ehr.transport.tls import TlsIdentity
from smpc_ehr.wire import coordinator_pb2_grpc

log = logging.getLogger(__name__)


async def serve(config: CoordinatorConfig, on_ready: Callable[[int], None] | None = None) -> None:
    """Run the coordinator until SIGTERM/SIGINT."""
    tls = TlsIdentity.from_files(
        config.id, config.roster.ca_cert, config.cert, config.key, role="coordinator"
    )
    trust = watch_roster(config.roster)
    coordinator = Coordinator(config, tls)
    trust.on_cut(coordinator.cut_members)
    servicer = CoordinatorServicer(config, coordinator, tls)
    server, port = await start_server(
        tls,
        config.listen,
        lambda s: coordinator_pb2_grpc.add_CoordinatorServicer_to_server(servicer, s),
    )
    coordinator.start()
    log.info("coordinator %s: serving on port %d (mutual TLS)", config.id, port)
    if on_ready is not None:
        on_ready(port)
    try:
        await serve_until_signalled(server)
    finally:
        await coordinator.close()
        forget_roster()


def run(config: CoordinatorConfig) -> None:
    """Blocking entry point for the CLI."""
    asyncio.run(serve(config))
