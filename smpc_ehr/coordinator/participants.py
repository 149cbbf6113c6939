"""Which hospitals take part in a job: those the analyst named, or every roster party.

Why: a job over every roster party stops as soon as one hospital is down. An analyst
may name the participants instead (`smpc-ehr run --parties a,b,c`); the coordinator
contacts only them. Whether a hospital runs an exact job over a subset is its own
policy (`allow_partial_jobs`, checked at each party: policy/partial.py).
"""

from __future__ import annotations

from collections.abc import Sequence

from smpc_ehr.errors import BadRequest


def choose_participants(roster_parties: Sequence[str], requested: Sequence[str]) -> list[str]:
    """The job's parties in roster order (their MPC party numbers follow it): every
    roster party when `requested` is empty, else exactly the requested ones. BadRequest
    names an unknown or repeated id."""
    if not requested:
        return list(roster_parties)
    unknown = sorted({p for p in requested if p not in roster_parties})
    if unknown:
        raise BadRequest(
            f"not parties of this federation's roster: {', '.join(unknown)} "
            f"(the roster's parties: {', '.join(roster_parties)})"
        )
    repeated = sorted({p for p in requested if list(requested).count(p) > 1})
    if repeated:
        raise BadRequest(f"parties named more than once: {', '.join(repeated)}")
    return [p for p in roster_parties if p in set(requested)]


def absent_parties(roster_parties: Sequence[str], participants: Sequence[str]) -> list[str]:
    """The roster parties a job leaves out, in roster order (what its result does not cover)."""
    return [p for p in roster_parties if p not in participants]
