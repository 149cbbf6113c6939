"""A job's cost as the analyst sees it: the parties' counts of what they sent, combined
and cut down to what the job's analysis declares public (analyses/common/cost.py).

The parties report, each for itself, the deepest depth among the messages it sent,
and its messages and payload bytes (transport/mesh.py counts them). The job's hops
are the largest depth any party reports: the number of sequential message rounds,
which a network's round trip multiplies. Anything the analysis withholds stays in the
parties' own logs (one line per job).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from smpc_ehr.analyses.common.cost import CostRelease
from smpc_ehr.wire import party_pb2

UNREPORTED = "not every party reported what it sent"


def released_cost(
    release: CostRelease, parties: Sequence[str], costs: Mapping[str, party_pb2.JobCost]
) -> dict[str, Any]:
    """The released cost: {"hops": h, "messages": {party: n}, "bytes_sent": {party: b}},
    each only where `release` allows it, and "withheld" saying what is left out and why."""
    if any(p not in costs for p in parties):
        return {"withheld": UNREPORTED}
    out: dict[str, Any] = {}
    if release.hops:
        out["hops"] = max((costs[p].hops for p in parties), default=0)
    if release.traffic:
        out["messages"] = {p: costs[p].messages for p in parties}
        out["bytes_sent"] = {p: costs[p].bytes_sent for p in parties}
    if release.why:
        out["withheld"] = release.why
    return out


def cost_line(cost: Mapping[str, Any] | None) -> str:
    """One readable line of a released cost ("" when there is none)."""
    if not cost:
        return ""
    parts = []
    if "hops" in cost:
        parts.append(f"{cost['hops']} hops")
    if "messages" in cost:
        parts.append(f"{sum(cost['messages'].values())} messages")
    if "bytes_sent" in cost:
        parts.append(f"{_size(sum(cost['bytes_sent'].values()))} sent")
    line = "cost: " + (", ".join(parts) if parts else "not released")
    return line + (f" ({cost['withheld']})" if "withheld" in cost else "")


def _size(n: int) -> str:
    """Bytes as B, KiB or MiB."""
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n / (1024 * 1024):.1f} MiB"
