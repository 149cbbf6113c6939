"""A party's approval rules: which protocol templates it runs, and its own limits.

Each party decides for itself. The coordinator forwards the template text and the
parameter values; the party recomputes the hash from the text it received (never
trusting a hash someone sent), checks the hash against its approved list, and
re-validates the values against the template's bounds. Any "no" is a Refusal whose
message is meant for the analyst.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from smpc_ehr.errors import BadRequest, ConfigError, Refusal, TemplateError
from smpc_ehr.policy.privacy import PrivacyPolicy
from smpc_ehr.securemath.constants import COUNT_BITS
from smpc_ehr.study.params import BoundParameters
from smpc_ehr.study.template import ProtocolTemplate, parse_template

DEFAULT_MIN_CELL_COUNT = 11
MAX_MIN_CELL_COUNT = 2**COUNT_BITS - 1
"""The largest small-cell threshold: the backends hold counts below 2^COUNT_BITS, so a
larger threshold could never be reached (and would not fit the wire's int32)."""
_HASH = re.compile(r"^sha256:[0-9a-f]{64}$")


def check_hash_text(value: object) -> str:
    """Return `value` if it looks like "sha256:<64 lowercase hex>", else raise ConfigError."""
    if not isinstance(value, str) or not _HASH.match(value):
        raise ConfigError(f"{value!r} is not a protocol hash of the form 'sha256:<64 hex digits>'")
    return value


@dataclass(frozen=True)
class PartyPolicy:
    """What one party accepts. `approved_names` maps hash -> template name for messages;
    `privacy` is its differential-privacy policy (default: exact runs, no budget);
    `allow_partial_jobs` lets exact jobs run over a subset of the hospitals."""

    min_cell_count: int = DEFAULT_MIN_CELL_COUNT
    approved_hashes: frozenset[str] = frozenset()
    approved_names: Mapping[str, str] = field(default_factory=dict)
    max_job_seconds: float = 120.0
    privacy: PrivacyPolicy = field(default_factory=PrivacyPolicy)
    allow_partial_jobs: bool = False
    """Run exact jobs that leave out some roster party (policy/partial.py says the risk)."""

    def __post_init__(self) -> None:
        problem = min_cell_count_problem(self.min_cell_count)
        if problem:
            raise ConfigError(f"min_cell_count {problem}")
        for h in self.approved_hashes:
            check_hash_text(h)
        if not math.isfinite(self.max_job_seconds) or self.max_job_seconds <= 0:
            raise ConfigError(f"max_job_seconds must be > 0, got {self.max_job_seconds!r}")


def check_job(
    policy: PartyPolicy, template_text: str, raw_params: Mapping[str, Any]
) -> tuple[ProtocolTemplate, BoundParameters]:
    """Decide whether this party runs a job; Refusal says why not."""
    try:
        template = parse_template(template_text, "<received protocol>")
    except TemplateError as exc:
        raise Refusal(f"the protocol template received is invalid: {exc}") from None
    digest = template.canonical_hash
    if digest not in policy.approved_hashes:
        reason = f"protocol '{template.name}' ({digest}) is not approved by this party"
        others = sorted(h for h, n in policy.approved_names.items() if n == template.name)
        if others:
            reason += f"; approved version(s) of '{template.name}': {', '.join(others)}"
        raise Refusal(reason)
    try:
        bound = template.bind(raw_params)
    except TemplateError as exc:
        raise Refusal(str(exc)) from None
    return template, bound


def min_cell_count_problem(value: object) -> str:
    """What is wrong with `value` as a small-cell threshold ("" if nothing): it must be
    an integer from 1 to MAX_MIN_CELL_COUNT, the largest count every backend holds."""
    if isinstance(value, bool) or not isinstance(value, int):
        return f"must be an integer, got {value!r}"
    if not 1 <= value <= MAX_MIN_CELL_COUNT:
        return (
            f"must be between 1 and {MAX_MIN_CELL_COUNT} (2^{COUNT_BITS} - 1, the largest "
            f"count the MPC backends represent), got {value}"
        )
    return ""


def job_deadline(seconds: object, limit: float | None = None, whose: str = "the") -> float:
    """`seconds` as a job deadline: a positive, finite number, at most `limit`.

    Checked by the client before sending, by the coordinator at Submit and by every
    party at Prepare: a negative, zero, NaN or infinite deadline is a bad request, not
    a job that times out at once (or never).
    """
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int | float)
        or not math.isfinite(seconds)
        or seconds <= 0
    ):
        raise BadRequest(
            f"the job deadline must be a positive, finite number of seconds, got {seconds!r}"
        )
    if limit is not None and seconds > limit:
        raise Refusal(f"a job deadline of {seconds:g} s exceeds {whose} limit of {limit:g} s")
    return float(seconds)


def check_deadline(policy: PartyPolicy, deadline_seconds: float) -> None:
    """Refuse jobs whose deadline is longer than this party is willing to wait."""
    job_deadline(deadline_seconds, policy.max_job_seconds, "this party's")


def effective_threshold(policy: PartyPolicy, proposed: int) -> int:
    """Accept a job's small-cell threshold if it is at least this party's minimum.

    The coordinator proposes the threshold (see `combine_thresholds`); each party
    checks it here, so no party's minimum can be undercut by the others.
    """
    problem = min_cell_count_problem(proposed)
    if problem:
        raise Refusal(f"the small-cell threshold {problem}")
    if proposed < policy.min_cell_count:
        raise Refusal(
            f"small-cell threshold {proposed} is below this party's minimum of "
            f"{policy.min_cell_count}"
        )
    return proposed


def combine_thresholds(minimums: Iterable[int]) -> int:
    """A job's threshold: the largest of the parties' minimum cell counts, each of which
    must be a valid threshold (a party's reply is checked, not trusted)."""
    values = list(minimums)
    if not values:
        raise ValueError("no party minimums to combine")
    for value in values:
        problem = min_cell_count_problem(value)
        if problem:
            raise Refusal(f"a party's small-cell minimum {problem}")
    return max(values)
