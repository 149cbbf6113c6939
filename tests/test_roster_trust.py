"""Roster version, CA signature and revoked certificates; reload without restart."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from pathlib import Path
from types import SimpleNamespace

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from smpc_ehr.audit.trail import PartyAudit
from smpc_ehr.cli import main
from smpc_ehr.config.analyst import load_analyst_config, write_analyst_config
from smpc_ehr.config.roster import load_roster, write_roster
from smpc_ehr.config.roster_sig import check_roster_signature, sign_roster, signature_path
from smpc_ehr.coordinator.service import CoordinatorServicer
from smpc_ehr.errors import ConfigError, JobAborted
from smpc_ehr.party.jobs import JobRunner, PreparedJob
from smpc_ehr.pki import trust
from smpc_ehr.pki.certs import PkiPaths, init_federation_pki
from smpc_ehr.testing.memory import certificate_of
from smpc_ehr.transport.tls import require_caller
from smpc_ehr.wire import common_pb2
from tests.test_pki import roster_at


@pytest.fixture()
def fed(tmp_path: Path) -> PkiPaths:
    return init_federation_pki(roster_at(tmp_path), tmp_path / "certs")


def sha256_of(pem_path: Path) -> str:
    """The fingerprint, computed independently of the code under test."""
    cert = x509.load_pem_x509_certificate(pem_path.read_bytes())
    der = cert.public_bytes(serialization.Encoding.DER)
    return "sha256:" + hashlib.sha256(der).hexdigest()


def set_roster(folder: Path, version: int, revoked: list[str]) -> Path:
    """Rewrite roster.toml with a version and a [revoked] list (the operator's edit)."""
    path = folder / "roster.toml"
    text = path.read_text().split("\n[revoked]")[0]
    text = "\n".join(line for line in text.splitlines() if not line.startswith("version"))
    listed = ", ".join(f'"{f}"' for f in revoked)
    path.write_text(f"version = {version}\n{text}\n[revoked]\nfingerprints = [{listed}]\n")
    return path


def test_version_and_revoked_are_read_checked_and_written(fed: PkiPaths, tmp_path: Path) -> None:
    fp = sha256_of(fed.cert_for("analyst"))
    spaced = "SHA256:" + ":".join(fp[7:][i : i + 2].upper() for i in range(0, 64, 2))
    roster = load_roster(set_roster(tmp_path, 7, [spaced]))
    assert roster.version == 7 and roster.revoked == {fp}
    copy = write_roster(roster, tmp_path / "again" / "roster.toml")
    assert load_roster(copy).revoked == {fp} and load_roster(copy).version == 7
    with pytest.raises(ConfigError, match=r"\[revoked\].*'sha1:abc' is not a certificate fingerp"):
        load_roster(set_roster(tmp_path, 7, ["sha1:abc"]))


def test_signed_roster_verifies_and_one_changed_byte_is_refused(
    fed: PkiPaths, tmp_path: Path
) -> None:
    path = tmp_path / "roster.toml"
    unsigned = load_roster(path, signature_required=True)
    with pytest.raises(ConfigError, match=r"is not signed .* requires a signed roster"):
        check_roster_signature(unsigned)
    assert check_roster_signature(load_roster(path)) is False  # not required: accepted
    assert main(["roster", "sign", "--ca-key", str(fed.ca_key), str(path)]) == 0
    assert signature_path(path) == tmp_path / "roster.toml.sig"
    assert check_roster_signature(load_roster(path, signature_required=True)) is True
    data = bytearray(path.read_bytes())
    data[data.index(b"127.0.0.1:50051") + 14] = ord("2")  # hospital-a's port 50051 -> 50052
    path.write_bytes(bytes(data))
    with pytest.raises(ConfigError, match="does not match its signature"):
        check_roster_signature(load_roster(path))  # altered: refused even if not required


def test_roster_signed_with_another_key_is_refused(fed: PkiPaths, tmp_path: Path) -> None:
    other = init_federation_pki(roster_at(tmp_path / "other"), tmp_path / "other" / "certs")
    with pytest.raises(ConfigError, match="is not the key of the CA certificate"):
        sign_roster(tmp_path / "roster.toml", other.ca_key)
    sign_roster(tmp_path / "other" / "roster.toml", other.ca_key)
    signature_path(tmp_path / "other" / "roster.toml").replace(tmp_path / "roster.toml.sig")
    (tmp_path / "roster.toml").write_bytes((tmp_path / "other" / "roster.toml").read_bytes())
    with pytest.raises(ConfigError, match="does not match its signature"):
        check_roster_signature(load_roster(tmp_path / "roster.toml"), fed.ca_cert.read_bytes())


def test_member_requiring_a_signed_roster_refuses_an_unsigned_one_at_load(
    fed: PkiPaths, tmp_path: Path
) -> None:
    config = write_analyst_config(
        tmp_path / "analyst.toml",
        id="analyst",
        roster="roster.toml",
        key="certs/analyst.key",
        cert="certs/analyst.pem",
    )
    config.write_text(config.read_text() + "\n[tls]\nrequire_signed_roster = true\n")
    with pytest.raises(ConfigError, match="not signed"):
        load_analyst_config(config)
    sign_roster(tmp_path / "roster.toml", fed.ca_key)
    assert load_analyst_config(config).roster.signature_required


class _Context:
    def __init__(self, pem: bytes) -> None:
        self._pem = pem

    def auth_context(self) -> dict[str, list[bytes]]:
        return {"x509_pem_cert": [self._pem]}

    async def abort(self, code: grpc.StatusCode, details: str) -> None:
        raise PermissionError(details)


def call(pem: bytes) -> str:
    async def go() -> str:
        return await require_caller(_Context(pem), "Submit")  # type: ignore[arg-type]

    return asyncio.run(go())


def test_revoked_certificate_is_refused_and_reload_rules(
    fed: PkiPaths, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    analyst_pem = fed.cert_for("analyst").read_bytes()
    party_pem = fed.cert_for("hospital-a").read_bytes()
    reissued = certificate_of("analyst")  # same id, another certificate
    sign_roster(set_roster(tmp_path, 3, []), fed.ca_key)
    holder = trust.activate(load_roster(tmp_path / "roster.toml", signature_required=True))
    cut: list[tuple[frozenset[str], str]] = []
    holder.on_cut(lambda ids, why: cut.append((ids, why)))
    reloads: list[dict[str, object]] = []  # what a party's audit log is told
    holder.on_reload(reloads.append)
    try:
        assert call(analyst_pem) == "analyst"
        assert call(party_pem) == "hospital-a"

        # Revoke the analyst's certificate in version 4: refused at once after reload.
        sign_roster(set_roster(tmp_path, 4, [sha256_of(fed.cert_for("analyst"))]), fed.ca_key)
        assert call(analyst_pem) == "analyst"  # not reloaded yet
        assert holder.reload()
        assert cut == [(frozenset({"analyst"}), "roster version 4 revoked or removed analyst")]
        with caplog.at_level(logging.WARNING), pytest.raises(PermissionError, match="revoked"):
            call(analyst_pem)
        assert "refused Submit from analyst: certificate revoked" in caplog.text
        assert call(party_pem) == "hospital-a"  # others undisturbed
        assert call(reissued) == "analyst"  # a re-issued certificate for the same id works

        # Rollback to version 3 (validly signed) refused; version 4 stays in force.
        sign_roster(set_roster(tmp_path, 3, []), fed.ca_key)
        caplog.clear()
        assert not holder.reload()
        assert "lower than the loaded 4" in caplog.text and holder.roster.version == 4
        with pytest.raises(PermissionError, match="revoked"):
            call(analyst_pem)

        # Tampered (unsigned change) refused; unsigned refused where required.
        sign_roster(set_roster(tmp_path, 5, []), fed.ca_key)
        set_roster(tmp_path, 6, [])
        caplog.clear()
        assert not holder.reload() and "does not match its signature" in caplog.text
        signature_path(tmp_path / "roster.toml").unlink()
        assert not holder.reload() and holder.roster.version == 4
        assert [(r["accepted"], r["version"]) for r in reloads] == [
            (True, 4),
            (False, 4),
            (False, 4),
            (False, 4),
        ]
        assert reloads[0]["cut"] == ["analyst"] and reloads[0]["previous_version"] == 3
        assert reloads[1]["reason"] == "version 3 is lower than the loaded 4"
    finally:
        trust.deactivate()


class _Channel:
    def __init__(self) -> None:
        self.failure: BaseException | None = None
        self.closed_with: str | None = None

    def fail(self, exc: BaseException) -> None:
        self.failure = exc

    async def close(self, reason: str | None) -> None:
        self.closed_with = reason


def test_party_aborts_only_a_job_with_a_cut_off_member(tmp_path: Path) -> None:
    audit = PartyAudit(tmp_path / "audit.jsonl", "hospital-a")

    async def go() -> _Channel:
        runner = JobRunner(None, None, None, None, audit=audit)  # type: ignore[arg-type]
        spec = common_pb2.JobSpec(job_id="j1", parties=["hospital-a", "hospital-b"], analyst="ann")
        channel = _Channel()
        runner._current = PreparedJob(spec, None, None, None, channel)  # type: ignore[arg-type]
        runner.abort_jobs_with(frozenset({"hospital-c", "bob"}), "roster version 2 revoked ...")
        assert channel.failure is None and runner.current_job == "j1"  # not in this job
        runner.abort_jobs_with(frozenset({"hospital-b"}), "roster version 2 revoked hospital-b")
        await asyncio.sleep(0)  # the prepared (not yet running) job is dropped
        running = _Channel()
        runner._current = PreparedJob(spec, None, None, None, running, running=True)  # type: ignore[arg-type]
        runner.abort_jobs_with(frozenset({"ann"}), "roster version 3 removed ann")
        failure = running.failure
        assert isinstance(failure, JobAborted) and "removed ann" in str(failure)
        runner.shutdown()
        return channel

    dropped = asyncio.run(go())
    assert isinstance(dropped.failure, JobAborted)
    assert dropped.closed_with == "roster version 2 revoked hospital-b"


def test_an_analyst_added_by_a_reload_may_submit_without_a_coordinator_restart(
    fed: PkiPaths, tmp_path: Path
) -> None:
    roster = load_roster(tmp_path / "roster.toml")
    servicer = CoordinatorServicer(SimpleNamespace(roster=roster), None)  # type: ignore[arg-type]
    assert servicer._analysts() == {"analyst"}
    holder = trust.activate(roster)
    try:
        path = set_roster(tmp_path, 2, [])
        bob = '[[analysts]]\nid = "bob"\n\n[revoked]'
        path.write_text(path.read_text().replace("[revoked]", bob))
        assert holder.reload()
        assert servicer._analysts() == {"analyst", "bob"}
    finally:
        trust.deactivate()
    assert servicer._analysts() == {"analyst"}  # no roster in force: the config's
