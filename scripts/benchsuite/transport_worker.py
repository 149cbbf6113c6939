"""One process of `bench.py transport` (started by the driver, never by hand):

    python -m benchsuite.transport_worker ROLE --spec FILE [--rank I]

Method and previous figures: docs/benchmarks.md."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import queue
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from benchsuite import transport_programs as programs

if TYPE_CHECKING:
    from smpc_ehr.transport.mesh import JobChannel
    from smpc_ehr.transport.tls import TlsIdentity

EXIT_ORPHANED = 70
"""Exit status when stdin closes: the driver is gone."""


class DriverLink:
    """Events to the driver on the original stdout; commands from it on stdin."""

    def __init__(self) -> None:
        self._out: TextIO = os.fdopen(os.dup(1), "w", buffering=1)
        os.dup2(2, 1)  # anything printed from here on lands in the log, not in the events
        self._commands: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._read, name="driver-commands", daemon=True).start()

    def _read(self) -> None:
        for line in sys.stdin:
            if line.strip():
                self._commands.put(json.loads(line))
        os._exit(EXIT_ORPHANED)  # stdin closed: the driver died or gave up on us

    def emit(self, event: str, **fields: Any) -> None:
        self._out.write(json.dumps({"event": event, **fields}) + "\n")

    def command(self, timeout: float) -> dict[str, Any]:
        """The next command (blocking)."""
        try:
            return self._commands.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no command from the driver within {timeout:g} s") from None

    async def next_command(self, timeout: float) -> dict[str, Any]:
        return await asyncio.to_thread(self.command, timeout)


# --- the project's mesh ---------------------------------------------------------------


def mesh_party(spec: dict[str, Any], rank: int, link: DriverLink, role: str) -> dict[str, Any]:
    return asyncio.run(_mesh_party(spec, rank, link, role))


async def _mesh_party(
    spec: dict[str, Any], rank: int, link: DriverLink, role: str
) -> dict[str, Any]:
    import grpc

    from smpc_ehr.transport.mesh import Mesh, receive_stream
    from smpc_ehr.transport.server import start_server
    from smpc_ehr.transport.status import message_for, status_for
    from smpc_ehr.transport.tls import TlsIdentity, peer_identity
    from smpc_ehr.wire import party_pb2, party_pb2_grpc

    parties: list[str] = spec["parties"]
    me = parties[rank]
    certs = Path(spec["certs"])
    tls = TlsIdentity.from_files(me, certs / "ca.pem", certs / f"{me}.pem", certs / f"{me}.key")

    class ExchangeOnly(party_pb2_grpc.PartyServicer):
        """The Party service reduced to Exchange, served as smpc_ehr/party/service.py does."""

        def __init__(self) -> None:
            self.mesh: Mesh | None = None

        async def Exchange(self, request_iterator: Any, context: Any) -> Any:
            mesh = self.mesh
            try:
                sender = peer_identity(context)
                if mesh is None or sender not in parties or sender == me:
                    raise PermissionError(f"{sender} may not send to {me} now")
            except PermissionError as exc:
                await context.abort(grpc.StatusCode.PERMISSION_DENIED, str(exc))
                raise  # not reached: abort raises
            try:
                received = await receive_stream(mesh.registry, sender, request_iterator)
            except Exception as exc:
                await context.abort(status_for(exc), message_for(exc))
            return party_pb2.ExchangeReply(received=received)

    servicer = ExchangeOnly()
    server, port = await start_server(
        tls, "127.0.0.1:0", lambda s: party_pb2_grpc.add_PartyServicer_to_server(servicer, s)
    )
    setup_seconds = float(spec["setup_seconds"])
    try:
        link.emit("listening", port=port)
        addresses = (await link.next_command(setup_seconds))["addresses"]
        mesh = Mesh(tls, {p: a for p, a in addresses.items() if p != me})
        servicer.mesh = mesh
        deadline = time.monotonic() + float(spec["deadline_seconds"])
        channel = mesh.open_job(spec["job_id"], parties, deadline)
        link.emit("ready")
        await link.next_command(setup_seconds)  # go: every party has opened the job
        run = _mpyc_on_mesh if role == "mpyc-mesh" else _crypten_on_mesh
        try:
            outcome = await run(channel, spec, tls)
        finally:
            await channel.close(None if channel.failure is None else str(channel.failure))
        outcome["mesh"] = {
            "hops": channel.hops,
            "messages": channel.messages_sent,
            "bytes": channel.bytes_sent,
        }
        await mesh.close()
        return outcome
    finally:
        await server.stop(1.0)


async def _mpyc_on_mesh(
    channel: JobChannel, spec: dict[str, Any], tls: TlsIdentity
) -> dict[str, Any]:
    """MPyC through `runtime.run_job`, the party's own path (JobChannel exchange)."""
    from smpc_ehr.backends.mpyc import runtime

    sizes = programs.MpycSizes(**spec["mpyc"])
    outcome: dict[str, Any] = {}

    async def program(ops: Any) -> list[Any]:
        result = await programs.mpyc_program(ops._rt, sizes, spec["seed"])
        outcome.update(result.as_dict())
        return []  # opened inside the program, as on MPyC's own transport

    await runtime.run_job(
        channel,
        program,
        bits=programs.COUNT_BITS,
        round_seconds=float(spec["round_seconds"]),
        prss_keys=runtime.send_prss_keys(channel),
    )
    return outcome


async def _crypten_on_mesh(
    channel: JobChannel, spec: dict[str, Any], tls: TlsIdentity
) -> dict[str, Any]:
    """CrypTen through `run_crypten_job` (dealer session + MeshCommunicator), on a worker
    thread as the party runs it."""
    from smpc_ehr.backends.crypten.compat import import_crypten
    from smpc_ehr.backends.crypten.job import run_crypten_job

    crypten = import_crypten()
    sizes = programs.CryptenSizes(**spec["crypten"])
    outcome: dict[str, Any] = {}

    async def program(ops: Any) -> list[Any]:
        outcome.update(programs.logistic_regression(crypten, sizes, spec["seed"]).as_dict())
        return []

    dealer = (tls, spec["dealer_id"], spec["dealer_address"])
    await asyncio.to_thread(
        run_crypten_job,
        channel,
        program,
        round_seconds=float(spec["round_seconds"]),
        dealer=dealer,
    )
    return outcome


def dealer(spec: dict[str, Any], link: DriverLink) -> None:
    """The dealer, until SIGTERM (its own handler stops it gracefully)."""
    from smpc_ehr.config.dealer import load_dealer_config
    from smpc_ehr.dealer.server import serve

    config = load_dealer_config(spec["dealer_config"])
    signal.alarm(0)  # lives for the whole benchmark; the driver stops it
    asyncio.run(serve(config, on_ready=lambda port: link.emit("listening", port=port)))


# --- the backends' own transports -----------------------------------------------------


def mpyc_own(spec: dict[str, Any], rank: int) -> dict[str, Any]:
    """MPyC's own TCP: the runtime `mpyc.runtime` builds from MPyC's command-line options."""
    ports: list[int] = spec["mpyc_ports"]
    parties = [f"-P127.0.0.1:{p}" for p in ports]
    sys.argv = [sys.argv[0], *parties, "-I", str(rank), *spec.get("mpyc_own_args", [])]
    from mpyc.runtime import mpc

    _listen_on_loopback(mpc._loop)
    sizes = programs.MpycSizes(**spec["mpyc"])

    async def main() -> dict[str, Any]:
        await mpc.start()
        outcome = await programs.mpyc_program(mpc, sizes, spec["seed"])
        await mpc.shutdown()
        return outcome.as_dict()

    outcome: dict[str, Any] = mpc.run(main())
    return outcome


def _listen_on_loopback(loop: asyncio.AbstractEventLoop) -> None:
    """MPyC's `Runtime.start` listens on every interface (host=None); keep it on 127.0.0.1.
    Only the bind address changes, nothing about the traffic."""
    create_server = loop.create_server

    async def on_loopback(factory: Any, host: Any = None, port: Any = None, **kw: Any) -> Any:
        return await create_server(factory, "127.0.0.1", port, **kw)

    loop.create_server = on_loopback  # type: ignore[method-assign,assignment]


def _gloo_environment(spec: dict[str, Any], rank: int) -> None:
    os.environ.update(
        DISTRIBUTED_BACKEND="gloo",
        RENDEZVOUS=f"file://{spec['rendezvous']}",
        WORLD_SIZE=str(len(spec["parties"])),
        RANK=str(rank),
        GLOO_SOCKET_IFNAME="lo",  # loopback only
    )


def crypten_own(spec: dict[str, Any], rank: int) -> dict[str, Any]:
    """CrypTen's DistributedCommunicator (gloo) with its TTP provider."""
    from smpc_ehr.backends.crypten.compat import import_crypten

    _gloo_environment(spec, rank)
    crypten = import_crypten()
    crypten.cfg.mpc.provider = "TTP"
    crypten.init()
    try:
        sizes = programs.CryptenSizes(**spec["crypten"])
        return programs.logistic_regression(crypten, sizes, spec["seed"]).as_dict()
    finally:
        crypten.uninit()  # rank 0 also tells the TTP server to stop


def crypten_ttp(spec: dict[str, Any]) -> None:
    """CrypTen's trusted third party: rank = number of parties; returns when told to stop."""
    from smpc_ehr.backends.crypten.compat import import_crypten

    _gloo_environment(spec, len(spec["parties"]))
    crypten = import_crypten()
    crypten.cfg.mpc.provider = "TTP"
    crypten.mpc.provider.ttp_provider.TTPServer()


# --- entry point ----------------------------------------------------------------------

ROLES = ("mpyc-mesh", "crypten-mesh", "dealer", "mpyc-own", "crypten-own", "crypten-ttp")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("role", choices=ROLES)
    parser.add_argument("--spec", type=Path, required=True)
    parser.add_argument("--rank", type=int, default=0)
    args = parser.parse_args()
    spec = json.loads(args.spec.read_text())
    link = DriverLink()
    signal.alarm(int(spec["deadline_seconds"] + spec["setup_seconds"]) + 10)
    try:
        if args.role == "dealer":
            dealer(spec, link)
            return 0
        if args.role == "crypten-ttp":
            crypten_ttp(spec)
            link.emit("result")
            return 0
        run = {
            "mpyc-mesh": lambda: mesh_party(spec, args.rank, link, args.role),
            "crypten-mesh": lambda: mesh_party(spec, args.rank, link, args.role),
            "mpyc-own": lambda: mpyc_own(spec, args.rank),
            "crypten-own": lambda: crypten_own(spec, args.rank),
        }[args.role]
        link.emit("result", **run())
        return 0
    except BaseException as exc:
        traceback.print_exc()
        link.emit("error", message=f"{type(exc).__name__}: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
