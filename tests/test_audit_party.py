"""What a party writes to its audit log (fast tier, in-process federation): a job's
receipt with its parameters and analyst, acceptance with the template, the privacy
budget reserved and committed, the outputs sent to the coordinator; a refusal with its
reason; and each log is a valid chain."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from smpc_ehr.audit.verify import read_chain
from smpc_ehr.policy.privacy import PrivacyPolicy
from smpc_ehr.testing.federation import ANALYST, COORDINATOR, JobFailed
from tests.test_privacy_jobs import HOSPITALS, TEMPLATE, _ones, federation

__all__ = ["_ones"]  # the fixture that registers the test analysis


def entries(state: Path, hospital: str) -> list[dict[str, Any]]:
    path = state / hospital / "audit" / f"{hospital}.jsonl"
    assert read_chain(path)[1] is None
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def test_a_dp_job_and_a_refused_job_are_recorded(tmp_path: Path) -> None:
    policy = PrivacyPolicy(epsilon_budget_per_analyst=1.0, delta=1e-6)
    assert federation(tmp_path, policy).run(TEMPLATE, {"epsilon": 0.5}).result["total"] == 3
    for hospital in HOSPITALS:
        log = entries(tmp_path, hospital)
        assert [e["kind"] for e in log] == [
            "job_received",
            "budget_reserved",
            "job_accepted",
            "budget_committed",
            "outputs_sent",
        ]
        received, reserved, accepted, _, sent = log
        job = received["fields"]["job"]
        assert received["fields"]["analyst"] == ANALYST
        assert received["fields"]["params"] == {"epsilon": "0.5"}
        assert received["fields"]["parties"] == list(HOSPITALS)
        assert received["fields"]["template_hash"] == TEMPLATE.canonical_hash
        assert reserved["fields"]["epsilon"] == 0.5 and reserved["fields"]["job"] == job
        assert accepted["fields"]["template"] == "dp_ones"
        assert sent["fields"] == {"job": job, "to": COORDINATOR, "outputs": 1}
    strict = federation(tmp_path, PrivacyPolicy(), PrivacyPolicy(require_dp=True))
    with pytest.raises(JobFailed):
        strict.run(TEMPLATE)
    refused = entries(tmp_path, "hospital-2")[-1]
    assert refused["kind"] == "job_refused"
    assert "requires differential privacy" in refused["fields"]["reason"]
    assert entries(tmp_path, "hospital-1")[-1]["kind"] == "job_dropped"
