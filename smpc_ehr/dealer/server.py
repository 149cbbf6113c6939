"""`smpc-ehr dealer`: serve the dealer service until stopped."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

import grpc

from smpc_ehr.config.dealer import DealerConfig
from smpc_ehr.dealer.service import DealerServicer
from smpc_ehr.dealer.sessions import Dealer
from smpc_ehr.pki.trust import deactivate as forget_roster
from smpc_ehr.pki.trust import watch as watch_roster
from smpc_ehr.transport.server import serve_until_signalled, start_server
from smpc_ehr.transport.tls import TlsIdentity
from smpc_ehr.wire import dealer_pb2_grpc

log = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def running(config: DealerConfig) -> AsyncIterator[tuple[grpc.aio.Server, int, Dealer]]:
    """A started dealer server and its sweeper; stopped on exit. Yields (server, port, dealer)."""
    tls = TlsIdentity.from_files(
        config.id, config.roster.ca_cert, config.cert, config.key, role="dealer"
    )
    watch_roster(config.roster)
    dealer = Dealer(config.roster, max_jobs_per_party=config.max_jobs_per_party)
    servicer = DealerServicer(config, dealer)
    server, port = await start_server(
        tls, config.listen, lambda s: dealer_pb2_grpc.add_DealerServicer_to_server(servicer, s)
    )
    sweeper = asyncio.create_task(dealer.sweep_forever())
    try:
        yield server, port, dealer
    finally:
        sweeper.cancel()
        await server.stop(0)
        forget_roster()


async def serve(config: DealerConfig, on_ready: Callable[[int], None] | None = None) -> None:
    """Run the dealer until SIGTERM/SIGINT."""
    async with running(config) as (server, port, _dealer):
        log.info("dealer %s: serving on port %d (mutual TLS)", config.id, port)
        if on_ready is not None:
            on_ready(port)
        await serve_until_signalled(server)


def run(config: DealerConfig) -> None:
    """Blocking entry point for the CLI."""
    asyncio.run(serve(config))
