"""Who may talk to whom: mutual TLS, identity from the certificate, roles, approval."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from cryptography import x509

from smpc_ehr.client import Client, JobFailed
from smpc_ehr.config.dealer import write_dealer_config
from smpc_ehr.config.party import write_party_config
from smpc_ehr.config.roster import Member, Roster
from smpc_ehr.errors import ConfigError, TemplateError
from smpc_ehr.local.federation import LocalFederation, down, free_port
from smpc_ehr.pki.certs import init_federation_pki, sign_certificate
from smpc_ehr.study.template import load_template
from smpc_ehr.transport.server import start_server
from smpc_ehr.transport.tls import TlsIdentity
from smpc_ehr.wire import (
    common_pb2,
    coordinator_pb2,
    coordinator_pb2_grpc,
    dealer_pb2,
    dealer_pb2_grpc,
    party_pb2,
    party_pb2_grpc,
)
from tests.federations import COUNT_TEMPLATE, make_data, start_federation


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
    # operational facts only: which backends are ready, the certificate's expiry and
    # the templates this hospital approves (a policy fact, `smpc-ehr templates`)
    allowed = {"identity", "role", "version", "state", "current_job"} | {
        "backends_ready",
        "cert_not_after",
        "approved",
    }
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
    wait_for_log(fed, "coordinator", f"refused Status from other-analyst: no job {job_id}")


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


# --- Identity is the certificate's one DNS name (issue 12, items 5, 6 and 10) ---

NOW = dt.datetime.now(dt.UTC)


def odd_identity(
    fed: LocalFederation,
    who: str,
    names: list[x509.GeneralName],
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> TlsIdentity:
    """A key and certificate with CN `who` and the given SAN names, signed by the
    federation's own CA (so only the names or dates can make it fail)."""
    certs = fed.state_dir / "certs"
    cert, key = sign_certificate(
        certs / "ca.pem",
        certs / "ca.key",
        who,
        names,
        not_before=not_before,
        not_after=not_after,
    )
    return TlsIdentity(who, (certs / "ca.pem").read_bytes(), cert, key)


def log_of(fed: LocalFederation, ident: str) -> str:
    return (fed.state_dir / "logs" / f"{ident}.log").read_text(errors="replace")


def wait_for_log(fed: LocalFederation, ident: str, text: str, seconds: float = 5.0) -> str:
    """The line of `ident`'s log holding `text` (the process writes it before it answers)."""
    end = time.monotonic() + seconds
    while True:
        found = [line for line in log_of(fed, ident).splitlines() if text in line]
        if found or time.monotonic() > end:
            assert found, f"{text!r} not in {ident}'s log"
            return found[-1]
        time.sleep(0.1)


def submit(tls: TlsIdentity, fed: LocalFederation) -> coordinator_pb2.SubmitReply:
    request = coordinator_pb2.SubmitRequest(
        protocol_toml=COUNT_TEMPLATE.read_text(), params={"codes": "E11"}
    )
    with tls.blocking_channel(fed.addresses["coordinator"], "coordinator") as channel:
        reply: coordinator_pb2.SubmitReply = coordinator_pb2_grpc.CoordinatorStub(channel).Submit(
            request, timeout=10
        )
        return reply


ODD_ANALYST_NAMES: dict[str, tuple[list[x509.GeneralName], str]] = {
    "email-only": ([x509.RFC822Name("analyst")], "has no DNS name (it names email analyst)"),
    "uri-only": (
        [x509.UniformResourceIdentifier("smpc-ehr://local/analyst/analyst")],
        "has no DNS name (it names URI smpc-ehr://local/analyst/analyst)",
    ),
    "cn-only": ([], "has no subjectAltName"),
    "two-dns-names": (
        [x509.DNSName("analyst"), x509.DNSName("other")],
        "has 2 DNS names (analyst, other)",
    ),
}


@pytest.mark.parametrize("case", sorted(ODD_ANALYST_NAMES))
def test_analyst_certificate_without_exactly_one_dns_name_cannot_submit(
    fed3: LocalFederation, case: str
) -> None:
    # A certificate signed by the federation CA, CN "analyst", but whose names are not
    # exactly one DNS name: the coordinator refuses it, gives no job id, and logs it.
    names, reason = ODD_ANALYST_NAMES[case]
    queued_before = log_of(fed3, "coordinator").count(" queued: ")
    with pytest.raises(grpc.RpcError) as err:
        submit(odd_identity(fed3, "analyst", names), fed3)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert reason in err.value.details()
    line = wait_for_log(fed3, "coordinator", "refused Submit from unauthenticated: certificate")
    assert f"CN=analyst {reason}" in line
    assert log_of(fed3, "coordinator").count(" queued: ") == queued_before


def test_the_same_analyst_with_one_dns_name_may_submit(fed3: LocalFederation) -> None:
    # The control: a certificate made the same way, with one DNS name, is the analyst.
    tls = odd_identity(fed3, "analyst", [x509.DNSName("analyst"), x509.RFC822Name("a@b.org")])
    with Client(fed3.addresses["coordinator"], tls, "coordinator") as client:
        job_id = client.run(COUNT_TEMPLATE, {"codes": "E11"}).job_id  # waits for the end
        assert client.status(job_id)["state"] == "done"


def test_email_only_party_certificate_cannot_exchange_or_join(fed3: LocalFederation) -> None:
    impostor = odd_identity(fed3, "hospital-2", [x509.RFC822Name("hospital-2")])
    job = f"forged-{uuid.uuid4().hex[:8]}"
    message = party_pb2.ShareMessage(job_id=job, tag="t", sender="hospital-2", chunks=1)
    with (
        impostor.blocking_channel(fed3.addresses["hospital-1"], "hospital-1") as channel,
        pytest.raises(grpc.RpcError) as err,
    ):
        party_pb2_grpc.PartyStub(channel).Exchange(iter([message]), timeout=10)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "has no DNS name" in err.value.details()
    wait_for_log(fed3, "hospital-1", "refused Exchange from unauthenticated: ")

    join = dealer_pb2.JoinRequest(
        job_id=job,
        parties=["hospital-1", "hospital-2", "hospital-3"],
        rank=1,
        seed=os.urandom(32),
        deadline_seconds=30,
    )
    with (
        impostor.blocking_channel(fed3.addresses["dealer"], "dealer") as channel,
        pytest.raises(grpc.RpcError) as err,
    ):
        dealer_pb2_grpc.DealerStub(channel).Join(join, timeout=10)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "has no DNS name" in err.value.details()
    wait_for_log(fed3, "dealer", "refused Join from unauthenticated: ")
    assert job not in log_of(fed3, "dealer")


@pytest.mark.parametrize(
    ("case", "not_before", "not_after", "expected"),
    [
        ("valid", None, None, None),
        ("expired", NOW - dt.timedelta(days=30), NOW - dt.timedelta(days=1), UNAVAILABLE),
        ("not yet valid", NOW + dt.timedelta(days=1), NOW + dt.timedelta(days=30), UNAVAILABLE),
    ],
)
def test_certificate_outside_its_validity_is_refused_by_the_handshake(
    fed3: LocalFederation,
    case: str,
    not_before: dt.datetime | None,
    not_after: dt.datetime | None,
    expected: grpc.StatusCode | None,
) -> None:
    # Signed by the federation CA with the right DNS name: only the dates differ.
    # (Another CA's certificate: test_certificate_from_another_ca_is_refused.)
    tls = odd_identity(fed3, "analyst", [x509.DNSName("analyst")], not_before, not_after)
    assert health_error(tls, fed3.addresses["hospital-2"], "hospital-2") == expected


def test_refused_role_is_logged_with_who_what_and_why(fed3: LocalFederation) -> None:
    stub = party_stub(fed3, "hospital-2", "hospital-1")
    with pytest.raises(grpc.RpcError):
        stub.Cancel(party_pb2.CancelRequest(job_id="x", reason="r"), timeout=5)
    wait_for_log(
        fed3, "hospital-1", "refused Cancel from hospital-2: hospital-2 may not call Cancel"
    )


def test_refused_prepare_is_logged_with_its_reason(fed3: LocalFederation) -> None:
    job = f"bounds-{uuid.uuid4().hex[:8]}"
    assert not prepare_as_coordinator(fed3, job, {"codes": "E11", "age": "0-200"}).accepted
    line = wait_for_log(fed3, "hospital-1", f"refused Prepare of job {job} from coordinator")
    assert "age" in line


@pytest.mark.parametrize("swap", ["certificate", "key"])
def test_own_certificate_is_checked_before_anything_listens(
    fed3: LocalFederation, swap: str
) -> None:
    certs = fed3.state_dir / "certs"
    own = (certs / "ca.pem", certs / "hospital-1.pem", certs / "hospital-1.key")
    other_cert, other_key = certs / "hospital-2.pem", certs / "hospital-2.key"
    if swap == "certificate":  # another member's certificate and key, under our id
        args, expected = (
            (own[0], other_cert, other_key),
            f"certificate {other_cert} is for 'hospital-2', but this party's id is 'hospital-1'",
        )
    else:  # our certificate with another member's key
        args, expected = (
            (own[0], own[1], other_key),
            f"private key {other_key} does not match certificate {own[1]}",
        )
    with pytest.raises(ConfigError) as err:
        TlsIdentity.from_files("hospital-1", *args, role="party")
    assert str(err.value) == expected


def start_process(role: str, config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "smpc_ehr", role, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


WRITE_CONFIG: dict[str, Callable[..., Path]] = {
    "party": write_party_config,
    "dealer": write_dealer_config,
}


@pytest.mark.parametrize(
    ("role", "ident", "cert", "key", "expected"),
    [
        # the reported attack: a config naming another member's certificate
        ("dealer", "dealer", "hospital-1", "hospital-1", "is for 'hospital-1', but this dealer's"),
        # a mismatched key was reported as "the port is in use"
        ("party", "hospital-1", "hospital-1", "hospital-2", "does not match certificate"),
    ],
)
def test_process_with_the_wrong_certificate_or_key_does_not_start(
    fed3: LocalFederation,
    data3: Path,
    tmp_path: Path,
    role: str,
    ident: str,
    cert: str,
    key: str,
    expected: str,
) -> None:
    certs = fed3.state_dir / "certs"
    extra = {"data": data3 / ident} if role == "party" else {}
    config = WRITE_CONFIG[role](
        tmp_path / f"{role}.toml",
        id=ident,
        roster=fed3.state_dir / "roster.toml",
        key=certs / f"{key}.key",
        cert=certs / f"{cert}.pem",
        listen=f"127.0.0.1:{free_port()}",
        **extra,
    )
    started = start_process(role, config)
    assert started.returncode != 0
    assert expected in started.stderr
    assert "in use" not in started.stderr and "serving on port" not in started.stderr
