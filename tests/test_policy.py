"""A party's approval decisions: approved hashes, parameter bounds, threshold, deadline."""

from __future__ import annotations

from pathlib import Path

import pytest

from smpc_ehr.errors import BadRequest, ConfigError, Refusal
from smpc_ehr.policy.approval import (
    PartyPolicy,
    check_deadline,
    check_job,
    combine_thresholds,
    effective_threshold,
    job_deadline,
)
from tests._canonical import independent_hash

REPO = Path(__file__).resolve().parents[1]
TEXT = (REPO / "protocols" / "rare_disease_count.toml").read_text()


HASH = independent_hash(TEXT)
POLICY = PartyPolicy(
    min_cell_count=11,
    approved_hashes=frozenset({HASH}),
    approved_names={HASH: "rare_disease_count"},
    max_job_seconds=60,
)


def test_approved_protocol_runs() -> None:
    template, bound = check_job(POLICY, TEXT, {"codes": "E75.22", "age": "40-65"})
    assert template.canonical_hash == HASH
    assert bound["codes"] == ("E75.22",)
    assert bound["age"] == (40, 65)


def test_comment_change_is_still_approved() -> None:
    template, _ = check_job(POLICY, "# reviewed by the ethics board\n" + TEXT, {"codes": "E84"})
    assert template.name == "rare_disease_count"


def test_unapproved_protocol_is_refused() -> None:
    changed = TEXT.replace("max_items = 20", "max_items = 200")
    with pytest.raises(Refusal) as info:
        check_job(POLICY, changed, {"codes": "E84"})
    message = str(info.value)
    assert f"protocol 'rare_disease_count' ({independent_hash(changed)}) is not approved" in message
    assert HASH in message  # points to the version that is approved


def test_nothing_approved_refuses_everything() -> None:
    with pytest.raises(Refusal, match="is not approved by this party"):
        check_job(PartyPolicy(), TEXT, {"codes": "E84"})


def test_out_of_bounds_values_are_refused_with_reason() -> None:
    with pytest.raises(Refusal, match=r"'age' \(int_range\): 0-130 is out of bounds.*0 and 120"):
        check_job(POLICY, TEXT, {"codes": "E84", "age": "0-130"})
    with pytest.raises(Refusal, match="unknown parameter"):
        check_job(POLICY, TEXT, {"codes": "E84", "site": "x"})
    with pytest.raises(Refusal, match="'codes' is required"):
        check_job(POLICY, TEXT, {})


def test_invalid_template_text_is_refused() -> None:
    with pytest.raises(Refusal, match="invalid"):
        check_job(POLICY, "[protocol\n", {})


@pytest.mark.parametrize("bad", [2**40, 2**30, 0, -1, True, 11.0])
def test_thresholds_outside_what_the_backends_count_are_refused(bad: object) -> None:
    """A party's minimum (or a proposed threshold) must be an integer in 1..2^30 - 1."""
    with pytest.raises(ConfigError, match="min_cell_count must be"):
        PartyPolicy(min_cell_count=bad)  # type: ignore[arg-type]
    with pytest.raises(Refusal, match="small-cell threshold must be"):
        effective_threshold(POLICY, bad)  # type: ignore[arg-type]
    with pytest.raises(Refusal, match="small-cell minimum must be"):
        combine_thresholds([11, bad])  # type: ignore[list-item]
    assert combine_thresholds([11, 2**30 - 1]) == 2**30 - 1


@pytest.mark.parametrize("bad", [-1, 0, -0.0, float("nan"), float("inf"), float("-inf"), "5"])
def test_deadlines_that_are_not_positive_finite_numbers_are_refused(bad: object) -> None:
    with pytest.raises(BadRequest, match="positive, finite number of seconds"):
        job_deadline(bad)
    with pytest.raises(Refusal, match="positive, finite number of seconds"):
        check_deadline(POLICY, bad)  # type: ignore[arg-type]
    assert job_deadline(0.5) == 0.5
    with pytest.raises(Refusal, match="exceeds the limit of 60 s"):
        job_deadline(61, 60)


def test_effective_threshold() -> None:
    assert effective_threshold(POLICY, 11) == 11
    assert effective_threshold(POLICY, 20) == 20
    with pytest.raises(Refusal, match="below this party's minimum of 11"):
        effective_threshold(POLICY, 10)
    with pytest.raises(Refusal):
        effective_threshold(POLICY, True)
    assert combine_thresholds([11, 5, 20]) == 20
    # the combined threshold is acceptable to every party that contributed
    policies = [PartyPolicy(min_cell_count=m) for m in (11, 5, 20)]
    job = combine_thresholds(p.min_cell_count for p in policies)
    assert all(effective_threshold(p, job) == 20 for p in policies)


def test_deadline_cap() -> None:
    check_deadline(POLICY, 60)
    with pytest.raises(Refusal, match="exceeds this party's limit of 60 s"):
        check_deadline(POLICY, 61)
    with pytest.raises(Refusal):
        check_deadline(POLICY, 0)


def test_policy_validation() -> None:
    with pytest.raises(ConfigError, match="min_cell_count"):
        PartyPolicy(min_cell_count=0)
    with pytest.raises(ConfigError, match="sha256"):
        PartyPolicy(approved_hashes=frozenset({"sha256:XYZ"}))
    with pytest.raises(ConfigError, match="max_job_seconds"):
        PartyPolicy(max_job_seconds=-1)
