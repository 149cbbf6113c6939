"""The WAN benchmark's delaying relay (scripts/benchsuite/relay.py) on 127.0.0.1: every
byte arrives, in order, both ways, and not before the one-way delay in each direction
(a lower bound only: a slow machine can add time, never remove it)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

RELAY = Path(__file__).resolve().parent.parent / "scripts" / "benchsuite" / "relay.py"
DELAY_MS = 60


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def echo_server() -> tuple[socket.socket, int]:
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data)

    threading.Thread(target=serve, daemon=True).start()
    return server, int(server.getsockname()[1])


def test_relay_forwards_every_byte_in_order_after_the_delay_both_ways() -> None:
    server, target = echo_server()
    port = free_port()
    relay = subprocess.Popen(
        [sys.executable, str(RELAY), "--host", "127.0.0.1", "--delay-ms", str(DELAY_MS),
         f"{port}=127.0.0.1:{target}"],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert relay.stdout is not None and relay.stdout.readline().strip() == b"ready"
        payload = os.urandom(3_000_000)
        with socket.create_connection(("127.0.0.1", port), timeout=20) as conn:
            start = time.monotonic()
            conn.sendall(b"ping")
            assert conn.recv(4) == b"ping"
            round_trip = time.monotonic() - start
            sender = threading.Thread(target=conn.sendall, args=(payload,))
            sender.start()
            received = bytearray()
            while len(received) < len(payload):
                received += conn.recv(1 << 20)
            sender.join()
        assert bytes(received) == payload
        assert round_trip >= 2 * DELAY_MS / 1000
    finally:
        relay.terminate()
        relay.wait(10)
        server.close()
