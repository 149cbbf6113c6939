"""Jobs over some of the hospitals: named participants, the `allow_partial_jobs` rule,
and a stopped hospital that a job without it never waits on (in process; the process
test is tests/test_partial_federation.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from smpc_ehr.config.coordinator import CoordinatorConfig
from smpc_ehr.config.party import load_party_config, write_party_config
from smpc_ehr.config.roster import Member, Roster, write_roster
from smpc_ehr.coordinator.jobs import Coordinator
from smpc_ehr.coordinator.participants import absent_parties, choose_participants
from smpc_ehr.data.loader import load_party_data
from smpc_ehr.data.synth import generate_federation
from smpc_ehr.errors import BadRequest, Refusal
from smpc_ehr.testing.federation import Hospital, InProcessFederation, JobFailed
from smpc_ehr.testing.memory import no_keys
from tests._truth import truth_counts
from tests.federations import COUNT_TEMPLATE

IDS = ("hospital-1", "hospital-2", "hospital-3", "hospital-4")
THREE = list(IDS[:3])
CODES = "E11"


@pytest.fixture(scope="module")
def data4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("data4")
    generate_federation(list(IDS), 600, 41, out)
    return out


def truth_over(data: Path, parties: list[str], scratch: Path) -> int:
    """The exact count over `parties` only (pandas on their files, not smpc_ehr)."""
    scratch.mkdir()
    for party in parties:
        (scratch / party).symlink_to(data / party)
    return truth_counts(scratch, [CODES])[()]


def federation(
    data: Path, allow: tuple[bool, ...] = (True,) * 4, stopped: str = "hospital-4"
) -> InProcessFederation:
    return InProcessFederation(
        [
            Hospital(h, load_party_data(data / h), allow_partial_jobs=a, stopped=h == stopped)
            for h, a in zip(IDS, allow, strict=True)
        ]
    )


def test_participants_are_the_named_roster_parties_in_roster_order() -> None:
    assert choose_participants(IDS, ()) == list(IDS)
    assert choose_participants(IDS, ["hospital-3", "hospital-1"]) == ["hospital-1", "hospital-3"]
    assert absent_parties(IDS, ["hospital-1", "hospital-3"]) == ["hospital-2", "hospital-4"]
    with pytest.raises(BadRequest, match="not parties of this federation's roster: hospital-9"):
        choose_participants(IDS, ["hospital-1", "hospital-9"])
    with pytest.raises(BadRequest, match="named more than once: hospital-2"):
        choose_participants(IDS, ["hospital-2", "hospital-2", "hospital-3"])


def test_with_one_hospital_stopped_a_job_over_the_others_runs_and_names_them(
    data4: Path, tmp_path: Path
) -> None:
    fed = federation(data4)
    outcome = fed.run(COUNT_TEMPLATE, {"codes": CODES}, parties=THREE)
    assert outcome.result["count"] == truth_over(data4, THREE, tmp_path / "three")
    assert outcome.parties == tuple(THREE)
    assert outcome.absent == ("hospital-4",)
    assert fed.stopped_calls == []  # the stopped hospital was never contacted


def test_a_job_over_every_hospital_fails_on_the_stopped_one(data4: Path) -> None:
    fed = federation(data4)
    with pytest.raises(JobFailed, match="hospital-4"):
        fed.run(COUNT_TEMPLATE, {"codes": CODES})
    assert "hospital-4.Prepare" in fed.stopped_calls


def test_an_exact_job_over_a_subset_is_refused_where_one_participant_does_not_allow_it(
    data4: Path,
) -> None:
    fed = federation(data4, allow=(True, False, True, True))
    with pytest.raises(JobFailed) as failed:
        fed.run(COUNT_TEMPLATE, {"codes": CODES}, parties=THREE)
    assert str(failed.value) == (
        "hospital-2 refused: hospital-2 does not allow jobs over a subset of the hospitals: "
        "an exact result over {hospital-1, hospital-2, hospital-3, hospital-4} minus one over "
        "{hospital-1, hospital-2, hospital-3} would reveal hospital-4's; set "
        "allow_partial_jobs or use epsilon"
    )


def test_a_dp_job_over_a_subset_runs_without_allow_partial_jobs(data4: Path) -> None:
    fed = federation(data4, allow=(False,) * 4)
    outcome = fed.run(COUNT_TEMPLATE, {"codes": CODES, "epsilon": 1.0}, parties=THREE)
    assert outcome.parties == tuple(THREE)
    assert outcome.absent == ("hospital-4",)


def test_an_exact_job_over_every_hospital_needs_no_allow_partial_jobs(
    data4: Path, tmp_path: Path
) -> None:
    fed = federation(data4, allow=(False,) * 4, stopped="")
    outcome = fed.run(COUNT_TEMPLATE, {"codes": CODES})
    assert outcome.result["count"] == truth_over(data4, list(IDS), tmp_path / "all")
    assert outcome.absent == ()


def roster4(folder: Path) -> Roster:
    members = tuple(Member(h, "party", h, f"127.0.0.1:{9000 + i}") for i, h in enumerate(IDS))
    return Roster(
        federation="t",
        ca_cert=folder / "ca.pem",
        coordinator=Member("coordinator", "coordinator", "C", "127.0.0.1:8999"),
        dealer=None,
        parties=members,
        analysts=(),
        source=folder / "roster.toml",
    )


def test_the_coordinator_refuses_too_few_or_unknown_participants_at_submission(
    tmp_path: Path,
) -> None:
    """With the production backends' rules (the in-process reference has none)."""
    config = CoordinatorConfig(
        "coordinator", roster4(tmp_path), "", tmp_path, tmp_path, 60.0, "INFO", tmp_path
    )
    coordinator = Coordinator(config, no_keys("coordinator"), lambda party: pytest.fail(party))
    text = COUNT_TEMPLATE.read_text()
    with pytest.raises(Refusal, match="MPyC backend needs at least 3 parties"):
        coordinator.submit(text, {"codes": CODES}, "", 0, "analyst", THREE[:2])
    with pytest.raises(Refusal, match="CrypTen backend needs a dealer"):
        coordinator.submit(text, {"codes": CODES}, "crypten", 0, "analyst", THREE[:2])
    with pytest.raises(BadRequest, match="hospital-9"):
        coordinator.submit(text, {"codes": CODES}, "", 0, "analyst", ["hospital-9"])
    job = coordinator.submit(text, {"codes": CODES}, "", 0, "analyst", ["hospital-4", *THREE[1:]])
    assert (job.parties, job.absent) == (["hospital-2", "hospital-3", "hospital-4"], ["hospital-1"])
    assert list(job.status().absent) == ["hospital-1"]


def test_allow_partial_jobs_is_read_from_the_policy_and_defaults_to_false(tmp_path: Path) -> None:
    roster = roster4(tmp_path)
    write_roster(roster, roster.source)
    files = {"key": "k.key", "cert": "c.pem", "data": "data"}
    for allow in (False, True):
        path = write_party_config(
            tmp_path / f"{allow}.toml",
            id=IDS[0],
            roster=roster.source,
            allow_partial_jobs=allow,
            **files,
        )
        assert load_party_config(path, check_files=False).policy.allow_partial_jobs is allow
    path.write_text(
        path.read_text().replace("allow_partial_jobs = true", 'allow_partial_jobs = "yes"')
    )
    with pytest.raises(Exception, match="allow_partial_jobs"):
        load_party_config(path, check_files=False)


def test_the_cli_takes_parties_and_allow_partial(capsys: pytest.CaptureFixture[str]) -> None:
    from smpc_ehr.cli import build_parser

    args = build_parser().parse_args(["run", "p.toml", "--parties", "hospital-1, hospital-3"])
    assert args.parties == ("hospital-1", "hospital-3")
    assert build_parser().parse_args(["run", "p.toml"]).parties == ()
    local = build_parser().parse_args(["local", "up", "--data", "d", "--allow-partial"])
    assert local.allow_partial
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "p.toml", "--parties", "hospital-1,,hospital-3"])
    assert "empty party id" in capsys.readouterr().err
