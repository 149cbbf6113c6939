"""Who may talk to whom: mutual TLS, identity from the certificate, roles, approval."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest

from smpc_ehr.client import Client, JobFailed
from smpc_ehr.config.roster import Member, Roster
from smpc_ehr.errors import ConfigError, TemplateError
from smpc_ehr.local.federation import LocalFederation, down
from smpc_ehr.pki.certs import init_federation_pki
from smpc_ehr.study.template import load_template
from smpc_ehr.transport.server import start_server
from smpc_ehr.transport.tls import TlsIdentity
from smpc_ehr.wire import common_pb2, coordinator_pb2_grpc, party_pb2, party_pb2_grpc
from tests.conftest import COUNT_TEMPLATE, make_data, start_federation


def identity(fed: LocalFederation, ident: str) -> TlsIdentity:
    certs = fed.state_dir / "certs"
    return TlsIdentity.from_files(
        ident, certs / "ca.pem", certs / f"{ident}.pem", certs / f"{ident}.key"
    )


def party_stub(fed: LocalFederation, caller: str, party: str) -> party_pb2_grpc.PartyStub:
    channel = identity(fed, caller).blocking_channel(fed.addresses[party], party)
    return party_pb2_grpc.PartyStub(channel)


def prepare_as_coordinator(
    fed: LocalFederation,
    job_id: str,
    params: dict[str, str],
    parties: tuple[str, ...] | list[str] = ("hospital-1", "hospital-2", "hospital-3"),
) -> party_pb2.PrepareReply:
    """Ask hospital-1 directly to prepare a job, as the coordinator would."""
    template = load_template(COUNT_TEMPLATE)
    spec = common_pb2.JobSpec(
        job_id=job_id,
        protocol_toml=template.source_text,
        protocol_hash=template.canonical_hash,
        params=params,
        backend="mpyc",
        parties=list(parties),
        deadline_seconds=30,
    )
    stub = party_stub(fed, "coordinator", "hospital-1")
    return stub.Prepare(party_pb2.PrepareRequest(job=spec), timeout=5)


UNAVAILABLE = grpc.StatusCode.UNAVAILABLE


def health_error(tls: TlsIdentity, address: str, expected: str) -> grpc.StatusCode | None:
    """The status of a Health call to `address` expecting identity `expected` (None: ok)."""
    with tls.blocking_channel(address, expected) as channel:
        try:
            party_pb2_grpc.PartyStub(channel).Health(party_pb2.HealthRequest(), timeout=5)
        except grpc.RpcError as exc:
            return exc.code()
    return None


def test_health_succeeds_with_the_right_certificates(fed3: LocalFederation) -> None:
    tls = identity(fed3, "analyst")
    assert health_error(tls, fed3.addresses["hospital-1"], "hospital-1") is None


@pytest.fixture(scope="module")
def foreign_pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another federation's CA, issuing certificates for the same names as ours."""
    out = tmp_path_factory.mktemp("foreign")
    roster = Roster(
        federation="foreign",
        ca_cert=out / "ca.pem",
        coordinator=Member("coordinator", "coordinator", "C", "127.0.0.1:1"),
        dealer=None,
        parties=(Member("hospital-1", "party", "H1", "127.0.0.1:2"),),
        analysts=(Member("analyst", "analyst", "A", None),),
        source=out / "roster.toml",
    )
    init_federation_pki(roster, out)
    return out


def test_client_without_certificate_is_refused(fed3: LocalFederation) -> None:
    ca = (fed3.state_dir / "certs" / "ca.pem").read_bytes()
    creds = grpc.ssl_channel_credentials(root_certificates=ca)
    options = [("grpc.ssl_target_name_override", "coordinator")]
    with (
        grpc.secure_channel(fed3.addresses["coordinator"], creds, options=options) as channel,
        pytest.raises(grpc.RpcError) as err,
    ):
        coordinator_pb2_grpc.CoordinatorStub(channel).Health(party_pb2.HealthRequest(), timeout=5)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE


def test_nothing_listens_without_tls(fed3: LocalFederation) -> None:
    with (
        grpc.insecure_channel(fed3.addresses["hospital-1"]) as channel,
        pytest.raises(grpc.RpcError) as err,
    ):
        party_pb2_grpc.PartyStub(channel).Health(party_pb2.HealthRequest(), timeout=5)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize("who", ["analyst", "hospital-1"])
def test_certificate_from_another_ca_is_refused(
    fed3: LocalFederation, foreign_pki: Path, who: str
) -> None:
    # Same identity names, but signed by a CA the federation does not trust.
    ours = (fed3.state_dir / "certs" / "ca.pem").read_bytes()
    impostor = TlsIdentity(
        who,
        ours,
        (foreign_pki / f"{who}.pem").read_bytes(),
        (foreign_pki / f"{who}.key").read_bytes(),
    )
    assert health_error(impostor, fed3.addresses["hospital-2"], "hospital-2") == UNAVAILABLE


def test_server_must_prove_the_expected_identity(fed3: LocalFederation) -> None:
    # Dial hospital-1's address but expect hospital-2: TLS rejects the name mismatch.
    tls = identity(fed3, "analyst")
    assert health_error(tls, fed3.addresses["hospital-1"], "hospital-2") == UNAVAILABLE


def test_party_claiming_another_partys_identity_is_rejected(fed3: LocalFederation) -> None:
    stub = party_stub(fed3, "hospital-3", "hospital-1")
    forged = party_pb2.ShareMessage(
        job_id="any", tag="t", sender="hospital-2", chunks=1, payload=b"x"
    )
    with pytest.raises(grpc.RpcError) as err:
        stub.Exchange(iter([forged]), timeout=5)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "certificate says 'hospital-3'" in err.value.details()


def test_message_for_unknown_job_is_rejected(fed3: LocalFederation) -> None:
    stub = party_stub(fed3, "hospital-3", "hospital-1")
    stray = party_pb2.ShareMessage(job_id="no-such-job", tag="t", sender="hospital-3", chunks=1)
    with pytest.raises(grpc.RpcError) as err:
        stub.Exchange(iter([stray]), timeout=5)
    assert err.value.code() == grpc.StatusCode.ABORTED
    assert "unknown job" in err.value.details()


@pytest.mark.parametrize(
    ("caller", "method"),
    [("hospital-2", "Prepare"), ("analyst", "Prepare"), ("analyst", "Exchange")],
)
def test_roles_are_enforced(fed3: LocalFederation, caller: str, method: str) -> None:
    stub = party_stub(fed3, caller, "hospital-1")
    with pytest.raises(grpc.RpcError) as err:
        if method == "Prepare":
            stub.Prepare(party_pb2.PrepareRequest(job=common_pb2.JobSpec(job_id="x")), timeout=5)
        else:
            stub.Exchange(iter([party_pb2.ShareMessage(job_id="x", sender=caller)]), timeout=5)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_party_refuses_unapproved_template_with_reason(
    fed3: LocalFederation, tmp_path: Path
) -> None:
    text = COUNT_TEMPLATE.read_text().replace("max_items = 20", "max_items = 21")
    changed = tmp_path / "changed.toml"
    changed.write_text(text)
    with Client.from_state(fed3.state_dir) as client, pytest.raises(JobFailed) as err:
        client.run(changed, {"codes": "E11"})
    message = str(err.value)
    for party in ("hospital-1", "hospital-2", "hospital-3"):
        assert f"{party} refused" in message
    assert load_template(changed).canonical_hash in message
    assert "not approved" in message


def test_party_refuses_out_of_bounds_values_even_from_the_coordinator(
    fed3: LocalFederation,
) -> None:
    # The client and coordinator check bounds too; this is the party's own check.
    reply = prepare_as_coordinator(fed3, "bounds-check", {"codes": "E11", "age": "0-200"})
    assert not reply.accepted
    assert "age" in reply.reason and "120" in reply.reason


def test_out_of_bounds_value_is_refused_before_sending(fed3: LocalFederation) -> None:
    with Client.from_state(fed3.state_dir) as client, pytest.raises(TemplateError, match="age"):
        client.submit(COUNT_TEMPLATE, {"codes": "E11", "age": "0-200"})


def test_second_server_cannot_share_a_port_in_use(fed3: LocalFederation) -> None:
    tls = identity(fed3, "hospital-1")

    async def second_server() -> None:
        await start_server(tls, fed3.addresses["hospital-1"], lambda server: None)

    with pytest.raises(ConfigError, match="in use"):
        asyncio.run(second_server())


@pytest.mark.parametrize(
    ("params", "deadline", "reason"),
    [
        ({"codes": "E11", "onset_from": "2020-01-01", "onset_to": "2019-01-01"}, None, "onset"),
        ({"codes": "E11"}, 100_000, "exceeds this coordinator's limit"),
    ],
)
def test_coordinator_refuses_what_it_cannot_run_with_a_reason(
    fed3: LocalFederation, params: dict, deadline: float | None, reason: str
) -> None:
    with Client.from_state(fed3.state_dir) as client, pytest.raises(JobFailed, match=reason):
        client.submit(COUNT_TEMPLATE, params, deadline_seconds=deadline)


def test_health_reveals_no_patient_numbers(fed3: LocalFederation) -> None:
    reply = party_stub(fed3, "analyst", "hospital-1").Health(party_pb2.HealthRequest(), timeout=5)
    assert reply.identity == "hospital-1" and reply.state in ("idle", "busy")
    allowed = {"identity", "role", "version", "state", "current_job"}
    assert {f.name for f in party_pb2.HealthReply.DESCRIPTOR.fields} == allowed
    assert {f.name for f, _ in reply.ListFields()} <= allowed


@pytest.fixture(scope="module")
def fed_two_analysts(data3: Path, tmp_path_factory: pytest.TempPathFactory):
    state = tmp_path_factory.mktemp("two-analysts")
    federation = start_federation(data3, state, more_analysts=("other-analyst",))
    yield federation
    down(state)


def test_an_analyst_cannot_read_another_analysts_job(fed_two_analysts: LocalFederation) -> None:
    fed = fed_two_analysts
    with Client.from_state(fed.state_dir) as owner:
        job_id = owner.run(COUNT_TEMPLATE, {"codes": "E11"}).job_id
        assert owner.status(job_id)["state"] == "done"
    other = Client(fed.addresses["coordinator"], identity(fed, "other-analyst"), "coordinator")
    with other:
        with pytest.raises(JobFailed, match="no job"):
            other.status(job_id)
        with pytest.raises(JobFailed, match="no job"):
            other.wait(job_id, timeout=10)


def test_party_refuses_an_mpyc_job_with_two_parties(fed3: LocalFederation) -> None:
    reply = prepare_as_coordinator(
        fed3, "two-party-mpyc", {"codes": "E11"}, parties=["hospital-1", "hospital-2"]
    )
    assert not reply.accepted
    assert "at least 3 parties" in reply.reason and "honest majority" in reply.reason


def test_two_party_federation_is_refused_mpyc_with_a_reason(tmp_path: Path) -> None:
    data = make_data(tmp_path / "data", 2, 500, seed=2)
    fed = start_federation(data, tmp_path / "state")
    try:
        with Client.from_state(fed.state_dir) as client, pytest.raises(JobFailed) as err:
            client.submit(COUNT_TEMPLATE, {"codes": "E11"})
    finally:
        down(fed.state_dir)
    assert "at least 3 parties" in str(err.value) and "threshold would be 0" in str(err.value)
