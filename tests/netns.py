"""Linux network namespaces joined by veth pairs, for the multi-host test.

Each member gets its own namespace with one address of 10.77.0.0/24 (10.77.0.10 and
up) on a veth pair whose other end is on a bridge in a "switch" namespace; this
process's namespace joins the bridge too, as 10.77.0.1, so the analyst (the test)
reaches the coordinator as from another host. Everything is made by the test and
removed at the end (deleting a namespace deletes its veth ends, and with them their
peers and the route to 10.77.0.0/24 here). Needs root and iproute2.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from smpc_ehr.local.federation import Placement

SUBNET = "10.77.0"
HERE = f"{SUBNET}.1"
"""This process's address on the test network."""


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


@contextmanager
def namespaces(idents: Sequence[str]) -> Iterator[Placement]:
    """One namespace per identity on a bridged 10.77.0.0/24; yields where each runs."""
    tag = f"s{os.getpid() % 100000}"
    switch = f"{tag}-switch"
    made: list[str] = []
    try:
        _ip("netns", "add", switch)
        made.append(switch)
        _ip("-n", switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", switch, "link", "set", "br0", "up")
        # This process's end: a veth pair from here to the bridge.
        _ip("link", "add", f"{tag}h", "type", "veth", "peer", "name", f"{tag}hb")
        _ip("link", "set", f"{tag}hb", "netns", switch)
        _ip("-n", switch, "link", "set", f"{tag}hb", "master", "br0", "up")
        _ip("addr", "add", f"{HERE}/24", "dev", f"{tag}h")
        _ip("link", "set", f"{tag}h", "up")
        hosts: dict[str, str] = {}
        prefixes: dict[str, list[str]] = {}
        for index, ident in enumerate(idents):
            ns = f"{tag}-{index}"
            _ip("netns", "add", ns)
            made.append(ns)
            inside, outside = f"{tag}m{index}", f"{tag}b{index}"
            _ip("link", "add", inside, "type", "veth", "peer", "name", outside)
            _ip("link", "set", inside, "netns", ns)
            _ip("link", "set", outside, "netns", switch)
            _ip("-n", switch, "link", "set", outside, "master", "br0", "up")
            hosts[ident] = f"{SUBNET}.{10 + index}"
            _ip("-n", ns, "addr", "add", f"{hosts[ident]}/24", "dev", inside)
            _ip("-n", ns, "link", "set", inside, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
            prefixes[ident] = ["ip", "netns", "exec", ns]
        yield Placement(hosts, prefixes)
    finally:
        for ns in reversed(made):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)
        subprocess.run(["ip", "link", "del", f"{tag}h"], capture_output=True, timeout=10)


def pids_in(prefix: Sequence[str]) -> set[int]:
    """The processes running in the namespace of a member's `Placement` prefix."""
    done = subprocess.run(
        ["ip", "netns", "pids", prefix[-1]], capture_output=True, text=True, timeout=10
    )
    return {int(p) for p in done.stdout.split()}
