"""Roster and party/coordinator/analyst config loading, validation and writing."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import pytest

from smpc_ehr.config.analyst import load_analyst_config, write_analyst_config
from smpc_ehr.config.coordinator import load_coordinator_config, write_coordinator_config
from smpc_ehr.config.party import load_party_config, write_party_config
from smpc_ehr.config.roster import Member, Roster, load_roster, parse_address, write_roster
from smpc_ehr.errors import ConfigError
from smpc_ehr.policy.privacy import PrivacyPolicy
from tests._canonical import independent_hash

REPO = Path(__file__).resolve().parents[1]
PROTOCOL = REPO / "protocols" / "rare_disease_count.toml"

ROSTER = """
[federation]
name = "test-net"
ca_cert = "certs/ca.pem"

[coordinator]
id = "coordinator"
address = "127.0.0.1:50050"

[dealer]
id = "dealer"
address = "127.0.0.1:50059"

[[parties]]
id = "hospital-a"
name = "St. Anna Hospital"
address = "127.0.0.1:50051"

[[parties]]
id = "hospital-b"
address = "[::1]:50052"

[[analysts]]
id = "analyst"
name = "Study analyst"
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def roster_error(tmp_path: Path, text: str) -> str:
    path = write(tmp_path / "roster.toml", text)
    with pytest.raises(ConfigError) as info:
        load_roster(path)
    message = str(info.value)
    assert str(path) in message  # every error names the file
    return message


# ---------------------------------------------------------------- roster


def test_valid_roster_loads(tmp_path: Path) -> None:
    roster = load_roster(write(tmp_path / "sub" / "roster.toml", ROSTER))
    assert roster.federation == "test-net"
    assert roster.ca_cert == tmp_path / "sub" / "certs" / "ca.pem"  # relative to the file
    assert roster.party_ids() == ("hospital-a", "hospital-b")
    assert roster.identities() == ("coordinator", "dealer", "hospital-a", "hospital-b", "analyst")
    assert roster.member("hospital-a") == Member(
        "hospital-a", "party", "St. Anna Hospital", "127.0.0.1:50051"
    )
    assert roster.member("coordinator").name == "coordinator"  # name defaults to id
    assert roster.member("hospital-b").port == 50052
    assert roster.member("hospital-b").host == "[::1]"
    assert roster.role_of("dealer") == "dealer"
    assert roster.role_of("analyst") == "analyst"
    assert roster.role_of("mallory") is None
    assert roster.party_index("hospital-b") == 1
    assert roster.member("analyst").address is None


def test_member_lookup_of_stranger_is_config_error(tmp_path: Path) -> None:
    roster = load_roster(write(tmp_path / "roster.toml", ROSTER))
    with pytest.raises(ConfigError, match="mallory"):
        roster.member("mallory")


def test_roster_without_dealer_or_analysts(tmp_path: Path) -> None:
    text = ROSTER.split("[dealer]")[0] + '[[parties]]\nid = "p1"\naddress = "h:1"\n'
    roster = load_roster(write(tmp_path / "roster.toml", text))
    assert roster.dealer is None
    assert roster.analysts == ()
    assert roster.party_ids() == ("p1",)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('id = "dealer"', 'id = "hospital-a"', "'hospital-a' is used by both"),
        ('id = "dealer"', 'id = "coordinator"', "'coordinator' is used by both"),
        ('id = "hospital-b"', 'id = "hospital-a"', "unique across all roles"),
        ('id = "analyst"', 'id = "hospital-b"', "unique across all roles"),
        ('id = "hospital-a"', 'id = "Hospital_A"', "'Hospital_A' is not a valid identity"),
        ('id = "hospital-a"', 'id = "-a"', "not a valid identity"),
        ('id = "hospital-a"', 'id = ""', "id"),
        ('id = "hospital-a"', 'id = "' + "a" * 64 + '"', "not a valid identity"),
        ('"127.0.0.1:50051"', '"127.0.0.1"', "not of the form 'host:port'"),
        ('"127.0.0.1:50051"', '"127.0.0.1:0"', "port must be between 1 and 65535"),
        ('"127.0.0.1:50051"', '"127.0.0.1:65536"', "port must be between 1 and 65535"),
        ('"127.0.0.1:50051"', '"127.0.0.1:http"', "is not a number"),
        ('"127.0.0.1:50051"', '"::1:50051"', "IPv6 hosts in brackets"),
        ('"127.0.0.1:50051"', '"bad host:1"', "not a host name"),
        ('name = "St. Anna Hospital"', 'nmae = "St. Anna"', "unknown key(s) 'nmae'"),
        ('ca_cert = "certs/ca.pem"', 'ca_cert = "c.pem"\nca_crt = "x"', "'ca_crt'"),
        ('name = "test-net"', 'name = "bad net/"', "[federation] name"),
        ('name = "Study analyst"', 'name = "Study analyst"\naddress = "h:1"', "'address'"),
        ('address = "127.0.0.1:50059"', 'adress = "127.0.0.1:50059"', "[dealer]"),
    ],
)
def test_invalid_roster_names_the_problem(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    assert old in ROSTER
    message = roster_error(tmp_path, ROSTER.replace(old, new, 1))
    assert expected in message


def test_roster_without_parties_is_rejected(tmp_path: Path) -> None:
    text = ROSTER.split("[[parties]]")[0]
    assert "at least one [[parties]]" in roster_error(tmp_path, text)


def test_roster_unknown_top_level_table_is_rejected(tmp_path: Path) -> None:
    assert "'partys'" in roster_error(tmp_path, ROSTER + '\n[[partys]]\nid = "x"\n')


def test_roster_missing_file_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="roster file not found"):
        load_roster(tmp_path / "nope.toml")
    assert "invalid TOML" in roster_error(tmp_path, "[federation\n")


def test_roster_address_type_error_names_entry(tmp_path: Path) -> None:
    message = roster_error(tmp_path, ROSTER.replace('"127.0.0.1:50051"', "50051"))
    assert "[[parties]] entry 1 address" in message


def test_parse_address() -> None:
    assert parse_address("example.org:443") == ("example.org", 443)
    assert parse_address("[::1]:1") == ("[::1]", 1)
    assert parse_address("0.0.0.0:0", allow_port_zero=True) == ("0.0.0.0", 0)
    with pytest.raises(ConfigError):
        parse_address("0.0.0.0:0")
    with pytest.raises(ConfigError):
        parse_address("[nonsense]:1")


def test_roster_round_trips_through_writer(tmp_path: Path) -> None:
    original = load_roster(write(tmp_path / "a" / "roster.toml", ROSTER))
    target = tmp_path / "b" / "roster.toml"
    write_roster(original, target)
    again = load_roster(target)
    assert again.ca_cert == original.ca_cert  # path rewritten relative to the new folder
    assert again.members() == original.members()
    assert again.federation == original.federation


def test_writer_escapes_strings(tmp_path: Path) -> None:
    roster = load_roster(write(tmp_path / "roster.toml", ROSTER))
    tricky = 'Spital "Süd"\\ \n\tline\x01'
    member = Member("hospital-c", "party", tricky, "127.0.0.1:50053")
    changed = Roster(
        roster.federation,
        roster.ca_cert,
        roster.coordinator,
        roster.dealer,
        (*roster.parties, member),
        roster.analysts,
        roster.source,
    )
    write_roster(changed, tmp_path / "out.toml")
    assert load_roster(tmp_path / "out.toml").member("hospital-c").name == tricky


def test_programmatic_roster_is_validated(tmp_path: Path) -> None:
    coord = Member("coordinator", "coordinator", "c", "h:1")
    party = Member("coordinator", "party", "p", "h:2")
    with pytest.raises(ConfigError, match="used by both"):
        Roster("net", tmp_path / "ca.pem", coord, None, (party,), (), tmp_path / "r.toml")
    with pytest.raises(ConfigError, match="needs an address"):
        Member("p", "party", "p", None)
    with pytest.raises(ConfigError, match="must not have an address"):
        Member("a", "analyst", "a", "h:1")


# ---------------------------------------------------------------- party and others


def federation(tmp_path: Path) -> Path:
    """A roster plus the files the configs point to (dummy key/cert, data folder)."""
    roster = write(tmp_path / "roster.toml", ROSTER)
    for name in (
        "ca.pem",
        "hospital-a.key",
        "hospital-a.pem",
        "coordinator.key",
        "coordinator.pem",
        "analyst.key",
        "analyst.pem",
    ):
        write(tmp_path / "certs" / name, "x")
        (tmp_path / "certs" / name).chmod(0o600)
    (tmp_path / "data" / "hospital-a").mkdir(parents=True)
    shutil.copy(PROTOCOL, tmp_path / "protocol.toml")
    return roster


PARTY = """
[party]
id = "hospital-a"
roster = "roster.toml"
key = "certs/hospital-a.key"
cert = "certs/hospital-a.pem"
data = "data/hospital-a"

[policy]
min_cell_count = 15
approved_protocols = ["protocol.toml"]
approved_hashes = ["sha256:%s"]
max_job_seconds = 60

[log]
level = "debug"
""" % ("ab" * 32)


def test_party_config_loads(tmp_path: Path) -> None:
    federation(tmp_path)
    config = load_party_config(write(tmp_path / "hospital-a.toml", PARTY))
    assert config.id == "hospital-a"
    assert config.listen == "0.0.0.0:50051"  # port from the roster
    assert config.key == tmp_path / "certs" / "hospital-a.key"
    assert config.data == tmp_path / "data" / "hospital-a"
    assert config.roster.party_ids() == ("hospital-a", "hospital-b")
    assert config.log_level == "DEBUG"
    policy = config.policy
    assert policy.min_cell_count == 15
    assert policy.max_job_seconds == 60.0
    assert policy.approved_hashes == {"sha256:" + "ab" * 32, independent_hash(PROTOCOL)}
    assert list(policy.approved_names.values()) == ["rare_disease_count"]
    assert config.state == tmp_path / "state" / "hospital-a"  # the default state folder


def test_party_privacy_policy_loads(tmp_path: Path) -> None:
    federation(tmp_path)
    text = PARTY.replace(
        "max_job_seconds = 60",
        "max_job_seconds = 60\nrequire_dp = true\nmax_epsilon_per_query = 1\n"
        "epsilon_budget_per_analyst = 3\nepsilon_budget_total = 10.5\ndelta = 1e-7\n"
        'budget_period = "quarter"',
    ).replace('data = "data/hospital-a"', 'data = "data/hospital-a"\nstate = "/var/lib/x"')
    config = load_party_config(write(tmp_path / "hospital-a.toml", text))
    assert config.policy.privacy == PrivacyPolicy(
        require_dp=True,
        max_epsilon_per_query=1.0,
        epsilon_budget_per_analyst=3.0,
        epsilon_budget_total=10.5,
        delta=1e-7,
        budget_period="quarter",
    )
    assert config.state == Path("/var/lib/x")


def test_party_policy_defaults(tmp_path: Path) -> None:
    federation(tmp_path)
    text = PARTY.split("[policy]")[0].replace(
        'data = "data/hospital-a"', 'data = "data/hospital-a"\nlisten = "127.0.0.1:0"'
    )
    config = load_party_config(write(tmp_path / "p.toml", text))
    assert config.listen == "127.0.0.1:0"
    assert config.policy.min_cell_count == 11
    assert config.policy.approved_hashes == frozenset()
    assert config.log_level == "INFO"
    assert config.policy.privacy == PrivacyPolicy()  # exact runs allowed, no budget
    assert not config.policy.privacy.require_dp
    assert config.policy.privacy.epsilon_budget_total is None
    assert config.policy.privacy.delta == 1e-6


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('id = "hospital-a"', 'id = "hospital-z"', "'hospital-z' is not in the roster"),
        ('id = "hospital-a"', 'id = "coordinator"', "has role coordinator in the roster, not"),
        ('id = "hospital-a"', 'id = "analyst"', "has role analyst"),
        ('"certs/hospital-a.key"', '"certs/missing.key"', "key: private key not found"),
        ('"certs/hospital-a.pem"', '"certs/missing.pem"', "cert: certificate not found"),
        ('"data/hospital-a"', '"data/nowhere"', "data: data folder not found"),
        ('["protocol.toml"]', '["missing.toml"]', "protocol template not found"),
        ("min_cell_count = 15", "min_cell_count = 0", "min_cell_count: must be between 1 and"),
        ("min_cell_count = 15", "min_cell_count = true", "expected an integer"),
        ("min_cell_count = 15", "min_cel_count = 15", "unknown key(s) 'min_cel_count'"),
        ('"sha256:' + "ab" * 32, '"md5:' + "ab" * 32, "approved_hashes"),
        ("max_job_seconds = 60", "max_job_seconds = 0", "max_job_seconds: must be > 0"),
        ("max_job_seconds = 60", "require_dp = 1", "[policy] require_dp: expected true or false"),
        ("max_job_seconds = 60", "delta = 1.5", "[policy]: delta must be a number strictly"),
        ("max_job_seconds = 60", "delta = 0", "[policy]: delta must be a number strictly"),
        ("max_job_seconds = 60", "epsilon_budget_total = -3", "epsilon_budget_total must be"),
        ("max_job_seconds = 60", 'epsilon_budget_total = "3"', "expected a number"),
        ("max_job_seconds = 60", "epsilon_budget_per_analyst = nan", "must be finite"),
        ("max_job_seconds = 60", "max_epsilon_per_query = 0", "max_epsilon_per_query must be"),
        ("max_job_seconds = 60", 'budget_period = "week"', "budget_period must be one of"),
        ("max_job_seconds = 60", "epsilon_budget = 3", "unknown key(s) 'epsilon_budget'"),
        ('data = "data/hospital-a"', 'data = "data/hospital-a"\nstate = ""', "state: expected"),
        ('level = "debug"', 'level = "loud"', "level: must be one of"),
        ('roster = "roster.toml"', 'roster = "nope.toml"', "roster file not found"),
        ('data = "data/hospital-a"', 'data = "data/hospital-a"\nlisten = "x"', "listen"),
        ("[log]", "[logging]", "'logging'"),
    ],
)
def test_invalid_party_config(tmp_path: Path, old: str, new: str, expected: str) -> None:
    federation(tmp_path)
    assert old in PARTY
    path = write(tmp_path / "hospital-a.toml", PARTY.replace(old, new, 1))
    with pytest.raises(ConfigError) as info:
        load_party_config(path)
    assert expected in str(info.value)


@pytest.mark.parametrize("value", [2**40, 2**30, 2**31 - 1, -5])
def test_min_cell_count_beyond_what_the_backends_count_is_refused(
    tmp_path: Path, value: int
) -> None:
    """2^40 used to load, then every job failed with "Value out of range"."""
    federation(tmp_path)
    text = PARTY.replace("min_cell_count = 15", f"min_cell_count = {value}", 1)
    path = write(tmp_path / "hospital-a.toml", text)
    with pytest.raises(ConfigError) as info:
        load_party_config(path)
    message = str(info.value)
    assert str(path) in message
    assert "[policy] min_cell_count: must be between 1 and 1073741823" in message
    assert str(value) in message


def test_largest_representable_min_cell_count_loads(tmp_path: Path) -> None:
    federation(tmp_path)
    text = PARTY.replace("min_cell_count = 15", f"min_cell_count = {2**30 - 1}", 1)
    config = load_party_config(write(tmp_path / "hospital-a.toml", text))
    assert config.policy.min_cell_count == 2**30 - 1


DEPTH = 3000
DEEP = {
    "array": "deep = " + "[" * DEPTH + "]" * DEPTH + "\n",
    "inline table": "deep = " + "{a = " * DEPTH + "1" + "}" * DEPTH + "\n",
}


@pytest.mark.parametrize("form", sorted(DEEP))
@pytest.mark.parametrize("kind", ["party config", "roster"])
def test_deeply_nested_toml_is_a_config_error_naming_the_file(
    tmp_path: Path, form: str, kind: str
) -> None:
    """tomllib recurses once per level: this used to end in a RecursionError traceback."""
    federation(tmp_path)
    if kind == "roster":
        path = write(tmp_path / "roster.toml", DEEP[form] + ROSTER)
        load = load_roster
    else:
        path = write(tmp_path / "hospital-a.toml", DEEP[form] + PARTY)
        load = load_party_config
    with pytest.raises(ConfigError) as info:
        load(path)
    assert str(info.value) == f"{path}: invalid TOML: arrays or tables nested too deeply"


def test_deep_table_where_a_value_belongs_is_reported_briefly(tmp_path: Path) -> None:
    """A [policy.min_cell_count.a.a...] header parses (no recursion in tomllib), but the
    error message's repr of that value used to recurse past Python's limit."""
    federation(tmp_path)
    text = PARTY.replace("min_cell_count = 15\n", "") + (
        "[policy.min_cell_count" + ".a" * DEPTH + "]\nb = 1\n"
    )
    path = write(tmp_path / "hospital-a.toml", text)
    with pytest.raises(ConfigError) as info:
        load_party_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: [policy] min_cell_count: expected an integer, got {{")
    assert len(message) < len(str(path)) + 200


def test_missing_ca_cert_is_reported(tmp_path: Path) -> None:
    federation(tmp_path)
    (tmp_path / "certs" / "ca.pem").unlink()
    with pytest.raises(ConfigError, match="ca_cert not found"):
        load_party_config(write(tmp_path / "hospital-a.toml", PARTY))
    # ...but configs can be checked before certificates exist
    assert load_party_config(tmp_path / "hospital-a.toml", check_files=False).id == "hospital-a"


def test_readable_key_only_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    federation(tmp_path)
    (tmp_path / "certs" / "hospital-a.key").chmod(0o644)
    load_party_config(write(tmp_path / "hospital-a.toml", PARTY))
    assert "chmod 600" in caplog.text


def test_party_config_writer_round_trips(tmp_path: Path) -> None:
    federation(tmp_path)
    out = tmp_path / "configs" / "hospital-a.toml"
    write_party_config(
        out,
        id="hospital-a",
        roster=tmp_path / "roster.toml",
        key=tmp_path / "certs" / "hospital-a.key",
        cert=tmp_path / "certs" / "hospital-a.pem",
        data=tmp_path / "data" / "hospital-a",
        listen="127.0.0.1:0",
        min_cell_count=5,
        approved_protocols=[tmp_path / "protocol.toml"],
        max_job_seconds=30,
        log_level="warning",
        state=tmp_path / "state-a",
        privacy=PrivacyPolicy(require_dp=True, epsilon_budget_per_analyst=3.0),
    )
    assert "../roster.toml" in out.read_text()  # written relative, so the tree can move
    config = load_party_config(out)
    assert config.key == tmp_path / "certs" / "hospital-a.key"
    assert config.listen == "127.0.0.1:0"
    assert config.policy.min_cell_count == 5
    assert config.policy.max_job_seconds == 30.0
    assert config.log_level == "WARNING"
    assert config.policy.approved_hashes == {independent_hash(PROTOCOL)}
    assert config.state == tmp_path / "state-a"
    assert config.policy.privacy == PrivacyPolicy(require_dp=True, epsilon_budget_per_analyst=3.0)


def test_coordinator_config(tmp_path: Path) -> None:
    federation(tmp_path)
    out = write_coordinator_config(
        tmp_path / "coordinator.toml",
        id="coordinator",
        roster="roster.toml",
        key="certs/coordinator.key",
        cert="certs/coordinator.pem",
        job_deadline_seconds=45,
    )
    config = load_coordinator_config(out)
    assert config.listen == "0.0.0.0:50050"
    assert config.job_deadline_seconds == 45.0
    text = out.read_text().replace('id = "coordinator"', 'id = "hospital-a"')
    with pytest.raises(ConfigError, match="has role party in the roster, not coordinator"):
        load_coordinator_config(write(tmp_path / "bad.toml", text))


def test_analyst_config(tmp_path: Path) -> None:
    federation(tmp_path)
    out = write_analyst_config(
        tmp_path / "analyst.toml",
        id="analyst",
        roster="roster.toml",
        key="certs/analyst.key",
        cert="certs/analyst.pem",
    )
    config = load_analyst_config(out)
    assert config.coordinator_address == "127.0.0.1:50050"
    assert config.ca_cert == tmp_path / "certs" / "ca.pem"
    text = out.read_text().replace('id = "analyst"', 'id = "dealer"')
    with pytest.raises(ConfigError, match="has role dealer"):
        load_analyst_config(write(tmp_path / "bad.toml", text))


def test_example_federation_configs_are_valid() -> None:
    parties = REPO / "parties"
    roster = load_roster(parties / "roster.toml")
    assert roster.party_ids() == ("hospital-a", "hospital-b", "hospital-c")
    assert roster.dealer is not None
    for pid in roster.party_ids():
        config = load_party_config(parties / f"{pid}.toml", check_files=False)
        assert config.id == pid
        listed = tomllib.loads((parties / f"{pid}.toml").read_text())["policy"]
        approved = {independent_hash(parties / p) for p in listed["approved_protocols"]}
        assert config.policy.approved_hashes == approved
    assert load_coordinator_config(parties / "coordinator.toml", check_files=False).id == (
        "coordinator"
    )
    assert load_analyst_config(parties / "analyst.toml", check_files=False).id == "analyst"
