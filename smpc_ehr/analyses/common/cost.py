"""Which of a job's cost figures (hops, messages and bytes per party) the analyst may see.

The mesh counts what every party sends (transport/mesh.py); the coordinator releases
it beside the result (coordinator/cost.py), but only what the job's analysis declares
a function of public parameters and of what its result already releases. The default
holds for an analysis whose every party inputs values of a public shape and whose
secure program opens nothing mid-way except a joint refusal (which ends the job with
no result and no cost): then the message pattern is fixed by the parameters, and by
the iteration counts that the result reports. Analyses that break this say so.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CostRelease:
    """What of a job's cost is released; `why` says what is withheld and why."""

    hops: bool = True
    """The job's hops (sequential message rounds)."""
    traffic: bool = True
    """Messages and bytes sent, per party."""
    why: str = ""


ALL = CostRelease()

ROWS_SHARED = CostRelease(
    hops=True,
    traffic=False,
    why=(
        "messages and bytes per hospital are withheld: in mode 'full' every hospital "
        "secret-shares its (padded) rows, so what it sends tells its row count"
    ),
)

ADAPTIVE_STEPS = CostRelease(
    hops=False,
    traffic=False,
    why=(
        "hops, messages and bytes are withheld: the secure products of each Newton step "
        "follow the size of the last step, which the hospitals see but the result does "
        "not release"
    ),
)

RESTARTS = CostRelease(
    hops=False,
    traffic=False,
    why=(
        "hops, messages and bytes are withheld: with several starts they count the "
        "iterations of the starts that lost, which the result does not release"
    ),
)
