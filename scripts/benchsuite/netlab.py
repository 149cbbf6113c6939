"""Linux network namespaces joined by veth pairs: real addresses for the multi-host test
and the WAN benchmark, made by the caller and removed at the end.

Each member gets its own namespace with one address of 10.77.0.0/24 (10.77.0.10 and
up) on a veth pair whose other end is on a bridge in a "switch" namespace; this
process's namespace joins the bridge too, as 10.77.0.1, so the analyst reaches the
coordinator as from another host. Deleting a namespace deletes its veth ends, and with
them their peers and the route to 10.77.0.0/24 here. Needs root and iproute2.

For a WAN (`wan(...)`): each member's link is rate-limited with `tc ... tbf` (these
kernels have no `netem`), and every member is reached through a delaying relay
(benchsuite/relay.py) in its own namespace at 10.77.0.2: the roster lists the relay's
address for each member, the member listens on its own, and the relay forwards each
byte after the one-way delay, both ways. TLS is unaffected (names are checked against
roster ids, not addresses). The relay lives here, in the benchmarks, never in the
product's path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from smpc_ehr.local.federation import Placement

SUBNET = "10.77.0"
HERE = f"{SUBNET}.1"
"""This process's address on the lab network."""
RELAY_HOST = f"{SUBNET}.2"
"""The delaying relay's address (WAN only)."""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=10)


def why_not() -> str:
    """Why namespaces cannot be made here ("" if they can): tried, not guessed."""
    if shutil.which("ip") is None:
        return "iproute2's `ip` is not installed"
    probe = f"smpcprobe{os.getpid() % 100000}"
    done = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if done.returncode != 0:
        return f"`ip netns add` fails here: {done.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return ""


@dataclass(frozen=True)
class Link:
    """What a WAN link between two members does to traffic."""

    delay_ms: float = 0.0
    """One-way delay, added by the relay in each direction."""
    rate_mbit: float | None = None
    """Each member's outgoing rate (tc tbf), None for unlimited."""


class _Lab:
    """The namespaces made so far, removed in reverse order by `close`."""

    def __init__(self) -> None:
        self.tag = f"s{os.getpid() % 100000}"
        self.made: list[str] = []
        self.switch = f"{self.tag}-switch"

    def start(self) -> None:
        _ip("netns", "add", self.switch)
        self.made.append(self.switch)
        _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.switch, "link", "set", "br0", "up")
        # This process's end: a veth pair from here to the bridge.
        tag = self.tag
        _ip("link", "add", f"{tag}h", "type", "veth", "peer", "name", f"{tag}hb")
        _ip("link", "set", f"{tag}hb", "netns", self.switch)
        _ip("-n", self.switch, "link", "set", f"{tag}hb", "master", "br0", "up")
        _ip("addr", "add", f"{HERE}/24", "dev", f"{tag}h")
        _ip("link", "set", f"{tag}h", "up")

    def host(self, name: str, address: str, rate_mbit: float | None = None) -> list[str]:
        """A namespace `name` with `address` on the bridge; the prefix that runs in it."""
        ns = f"{self.tag}-{name}"
        _ip("netns", "add", ns)
        self.made.append(ns)
        inside, outside = f"{self.tag}m{name}", f"{self.tag}b{name}"
        _ip("link", "add", inside, "type", "veth", "peer", "name", outside)
        _ip("link", "set", inside, "netns", ns)
        _ip("link", "set", outside, "netns", self.switch)
        _ip("-n", self.switch, "link", "set", outside, "master", "br0", "up")
        _ip("-n", ns, "addr", "add", f"{address}/24", "dev", inside)
        _ip("-n", ns, "link", "set", inside, "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        if rate_mbit is not None:
            burst = max(32_000, int(rate_mbit * 1e6 / 8 / 250))  # >= 4 ms of traffic
            subprocess.run(
                ["ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", inside, "root", "tbf",
                 "rate", f"{rate_mbit}mbit", "burst", str(burst), "latency", "400ms"],
                check=True, capture_output=True, text=True, timeout=10,
            )  # fmt: skip
        return ["ip", "netns", "exec", ns]

    def close(self) -> None:
        for ns in reversed(self.made):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)
        subprocess.run(["ip", "link", "del", f"{self.tag}h"], capture_output=True, timeout=10)


LAB_PORT = 50100
"""Members listen on LAB_PORT + their index: each has its own namespace (and the relay
its own), so these ports are free wherever they are used."""


@contextmanager
def namespaces(idents: Sequence[str], link: Link | None = None) -> Iterator[Placement]:
    """One namespace per identity on a bridged 10.77.0.0/24; yields where each runs.

    With `link`, each member's outgoing rate is limited and every member is reached
    through the delaying relay (see the module docstring): the placement advertises the
    relay's host in the roster, with each member's fixed port, which the relay forwards
    to the same port at the member's own address."""
    lab = _Lab()
    try:
        lab.start()
        hosts: dict[str, str] = {}
        prefixes: dict[str, list[str]] = {}
        for index, ident in enumerate(idents):
            hosts[ident] = f"{SUBNET}.{10 + index}"
            rate = link.rate_mbit if link is not None else None
            prefixes[ident] = lab.host(str(index), hosts[ident], rate)
        if link is None:
            yield Placement(hosts, prefixes)
            return
        ports = {ident: LAB_PORT + index for index, ident in enumerate(idents)}
        routes = [f"{ports[i]}={hosts[i]}:{ports[i]}" for i in idents]
        with _relay(lab.host("relay", RELAY_HOST), routes, link.delay_ms):
            relayed = {ident: RELAY_HOST for ident in idents}
            yield Placement(hosts, prefixes, advertised=relayed, ports=ports)
    finally:
        lab.close()


@contextmanager
def _relay(prefix: list[str], routes: list[str], delay_ms: float) -> Iterator[None]:
    """The delaying relay (relay.py) in its namespace, listening at RELAY_HOST on each
    route's port; stopped on leaving."""
    command = [
        *prefix,
        sys.executable,
        str(Path(__file__).with_name("relay.py")),
        "--host",
        RELAY_HOST,
        "--delay-ms",
        str(delay_ms),
        *routes,
    ]
    relay = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    try:
        assert relay.stdout is not None
        ready = relay.stdout.readline().decode().strip()  # "ready" once every port listens
        if ready != "ready":
            raise RuntimeError(f"the delaying relay did not start (exit {relay.poll()})")
        yield
    finally:
        relay.terminate()
        try:
            relay.wait(10)
        except subprocess.TimeoutExpired:
            relay.kill()


def pids_in(prefix: Sequence[str]) -> set[int]:
    """The processes running in the namespace of a member's `Placement` prefix."""
    done = subprocess.run(
        ["ip", "netns", "pids", prefix[-1]], capture_output=True, text=True, timeout=10
    )
    return {int(p) for p in done.stdout.split()}
