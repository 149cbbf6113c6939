"""A hospital's rule for jobs over a subset of the federation's hospitals.

Why: the templates promise that no hospital's own numbers are learnt, but two exact
results differ by exactly what one covers and the other does not: a count over
{a, b, c} minus a count over {a, b} is hospital c's count. So a hospital runs an exact
job (no `epsilon`) that leaves out some roster party only when its policy says
`allow_partial_jobs = true`. A differentially private job over a subset runs either
way: its noise hides any one hospital's contribution to the difference, and the
hospital's budget (policy/ledger.py) is charged for it as for any other query.
"""

from __future__ import annotations

from collections.abc import Sequence

from smpc_ehr.errors import Refusal
from smpc_ehr.privacy.accountant import Charge


def _set(ids: Sequence[str]) -> str:
    return "{" + ", ".join(ids) + "}"


def check_partial_job(
    allowed: bool,
    party: str,
    participants: Sequence[str],
    roster_parties: Sequence[str],
    charge: Charge | None,
    reads_patient_data: bool = True,
) -> None:
    """Refuse an exact job over patient data whose participants are not all the roster's
    parties, unless this hospital allows partial jobs (a DP job, or a diagnostic on public
    numbers, runs over any subset)."""
    left_out = [p for p in roster_parties if p not in participants]
    if allowed or charge is not None or not reads_patient_data or not left_out:
        return
    taking_part = [p for p in roster_parties if p in participants]
    raise Refusal(
        f"{party} does not allow jobs over a subset of the hospitals: an exact result over "
        f"{_set(roster_parties)} minus one over {_set(taking_part)} would reveal "
        f"{' and '.join(left_out)}'s; set allow_partial_jobs or use epsilon"
    )
