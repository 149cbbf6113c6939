"""A hospital's differential-privacy policy: whether exact runs are allowed, the largest
epsilon of one query, and its privacy budgets (per analyst, and in total over all
analysts, so that colluding analysts cannot multiply the budget) over a budget period.

Budgets and caps are stated as epsilon at the policy's delta; the ledger composes in
zCDP and converts with `accountant.epsilon_for` (see there). The defaults are today's
behaviour: exact runs allowed, no cap, no budget.

A budget period is a calendar window in UTC after which the budget starts again. That
is a policy choice, not a property of privacy: losses of earlier periods still count
against the patients, which is why the default period is "forever".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from smpc_ehr.errors import ConfigError, Refusal
from smpc_ehr.privacy.accountant import Charge, check_delta, epsilon_for

DEFAULT_DELTA = 1e-6
BUDGET_PERIODS = ("forever", "year", "quarter", "month")


def _positive_or_none(name: str, value: float | None) -> None:
    if value is None:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ConfigError(f"{name} must be a finite number > 0, got {value!r}")


@dataclass(frozen=True)
class PrivacyPolicy:
    """One hospital's DP settings; None means "no limit"."""

    require_dp: bool = False
    max_epsilon_per_query: float | None = None
    epsilon_budget_per_analyst: float | None = None
    epsilon_budget_total: float | None = None
    delta: float = DEFAULT_DELTA
    budget_period: str = "forever"

    def __post_init__(self) -> None:
        if not isinstance(self.require_dp, bool):
            raise ConfigError(f"require_dp must be true or false, got {self.require_dp!r}")
        _positive_or_none("max_epsilon_per_query", self.max_epsilon_per_query)
        _positive_or_none("epsilon_budget_per_analyst", self.epsilon_budget_per_analyst)
        _positive_or_none("epsilon_budget_total", self.epsilon_budget_total)
        try:
            check_delta(self.delta)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if self.budget_period not in BUDGET_PERIODS:
            raise ConfigError(
                f"budget_period must be one of {', '.join(BUDGET_PERIODS)}, "
                f"got {self.budget_period!r}"
            )


def period_start(period: str, now: datetime) -> datetime | None:
    """The start (UTC) of the budget period holding `now`; None for "forever"."""
    now = now.astimezone(UTC)
    if period == "forever":
        return None
    if period == "year":
        return datetime(now.year, 1, 1, tzinfo=UTC)
    if period == "quarter":
        return datetime(now.year, 3 * ((now.month - 1) // 3) + 1, 1, tzinfo=UTC)
    if period == "month":
        return datetime(now.year, now.month, 1, tzinfo=UTC)
    raise ValueError(f"unknown budget period {period!r}")


def period_label(period: str, now: datetime) -> str:
    """The period holding `now`, for messages: "budget period: calendar month since
    2026-12-01 UTC"."""
    start = period_start(period, now)
    if start is None:
        return "budget period: forever"
    return f"budget period: calendar {period} since {start:%Y-%m-%d} UTC"


def check_exact_run(
    policy: PrivacyPolicy, party: str, charge: Charge | None, reads_patient_data: bool = True
) -> None:
    """Refuse an exact (noiseless) run of an analysis over patient data where this
    hospital requires differential privacy (a diagnostic on public numbers runs)."""
    if charge is None and policy.require_dp and reads_patient_data:
        raise Refusal(
            f"{party} requires differential privacy: give the template's epsilon "
            "(exact runs are refused by its policy)"
        )


def check_query_cap(policy: PrivacyPolicy, party: str, charge: Charge) -> None:
    """Refuse one query whose epsilon, at the policy's delta, exceeds the per-query cap."""
    cap = policy.max_epsilon_per_query
    if cap is None:
        return
    epsilon = epsilon_for(charge.rho, policy.delta)
    if epsilon > cap:
        raise Refusal(
            f"{party} allows at most epsilon = {cap:g} per query (at delta = "
            f"{policy.delta:g}); this job asks for {charge.describe()}, which is epsilon = "
            f"{epsilon:.4g} at that delta"
        )
