"""A delaying TCP relay for the WAN benchmark: these kernels have `tc` rate limiting but
not `netem`, so the delay of a wide-area link is added here, in user space.

    python relay.py --host 10.77.0.2 --delay-ms 10 50100=10.77.0.10:50100 ...

listens on HOST:PORT for every route PORT=TARGET and forwards each connection to
TARGET, holding every chunk of bytes for the one-way delay before passing it on, in
both directions and in order (a chunk read at time t is written at t + delay; reading
goes on meanwhile, so the delay does not cut the throughput). Prints "ready" once every
port listens. Benchmarks only (benchsuite/netlab.py starts it in its own network
namespace); nothing of the product goes through it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Awaitable, Callable

CHUNK = 256 * 1024


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Forward reader -> writer, each chunk `delay` seconds after it was read."""
    held: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def send() -> None:
        while True:
            due, data = await held.get()
            if not data:
                break
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        with contextlib.suppress(OSError):
            writer.write_eof()

    sender = asyncio.ensure_future(send())
    try:
        while data := await reader.read(CHUNK):
            held.put_nowait((time.monotonic() + delay, data))
    except OSError:
        pass
    held.put_nowait((time.monotonic() + delay, b""))
    with contextlib.suppress(OSError, asyncio.CancelledError):
        await sender


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def _route(target: tuple[str, int], delay: float) -> Handler:
    """The connection handler of one route: dial `target`, pipe both ways, delayed."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*target)
        except OSError:
            writer.close()
            return
        await asyncio.gather(
            _pipe(reader, up_writer, delay), _pipe(up_reader, writer, delay), return_exceptions=True
        )
        for w in (writer, up_writer):
            w.close()

    return handle


async def main(host: str, delay: float, routes: list[str]) -> None:
    servers = []
    for route in routes:
        port, _, target = route.partition("=")
        target_host, _, target_port = target.rpartition(":")
        handler = _route((target_host, int(target_port)), delay)
        servers.append(await asyncio.start_server(handler, host, int(port)))
    print("ready", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for server in servers:
        server.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", required=True)
    parser.add_argument("--delay-ms", type=float, required=True)
    parser.add_argument("routes", nargs="+", metavar="PORT=HOST:PORT")
    args = parser.parse_args()
    asyncio.run(main(args.host, args.delay_ms / 1000.0, args.routes))
    sys.exit(0)
