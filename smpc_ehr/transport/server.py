"""Starting and stopping a mutual-TLS grpc.aio server, shared by every process role."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable

import grpc

from smpc_ehr.errors import ConfigError
from smpc_ehr.transport.tls import SERVER_OPTIONS, TlsIdentity

log = logging.getLogger(__name__)


async def start_server(
    tls: TlsIdentity, listen: str, add_services: Callable[[grpc.aio.Server], None]
) -> tuple[grpc.aio.Server, int]:
    """Bind `listen` (host:port) with mutual TLS only, start serving; return (server, port).

    Port reuse is off, so a second server on a port already in use fails here with a
    message instead of silently sharing it. Call inside the loop that will serve.
    """
    server = grpc.aio.server(options=SERVER_OPTIONS)
    add_services(server)
    try:
        port = server.add_secure_port(listen, tls.server_credentials())
    except RuntimeError as exc:
        raise ConfigError(f"cannot listen on {listen}: the port is in use or unavailable") from exc
    if port == 0:
        raise ConfigError(f"cannot listen on {listen}: the port is in use or unavailable")
    await server.start()
    return server, port


async def serve_until_signalled(
    server: grpc.aio.Server, on_stop: Callable[[], None] | None = None, grace: float = 3.0
) -> None:
    """Serve until SIGTERM or SIGINT, then stop gracefully (in-flight RPCs get `grace` s)."""
    stop = asyncio.Event()
    received: list[str] = []
    loop = asyncio.get_running_loop()

    def on_signal(sig: signal.Signals) -> None:
        received.append(sig.name)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, on_signal, sig)
    serving = asyncio.ensure_future(server.wait_for_termination())
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait([serving, stopping], return_when=asyncio.FIRST_COMPLETED)
    log.info("shutting down: %s", f"received {received[0]}" if received else "server stopped")
    if on_stop is not None:
        on_stop()
    await server.stop(grace)
    stopping.cancel()
