"""Signed heads: a party's statement "my audit log's entry `seq` has hash `hash`",
signed with its TLS key (ECDSA) and carrying its certificate, so that any member
holding the federation's CA certificate can check it later without asking anyone.

A party sends its heads to the others (gossip.py); each keeps what it receives in a
`HeadStore` (an append-only JSON-lines file per sender, its latest head, its
certificates once). A head another party holds pins the sender's log up to `seq`:
rewriting or truncating that part shows.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from smpc_ehr.audit.chain import AuditError, append_line, canonical, now_text
from smpc_ehr.pki.certs import dns_identity

CONTEXT = "smpc-ehr audit head v1"
"""Signed with the head, so a signature over it means nothing anywhere else."""
MAX_HEAD_BYTES = 16 * 1024
"""A head (with its certificate) is small; a larger one is refused unread."""


@dataclass(frozen=True)
class SignedHead:
    """A party's signed statement of its log's last entry."""

    party: str
    seq: int
    hash: str
    time: str
    signature: str
    """base64 DER ECDSA-SHA256 signature over `signed_bytes`."""
    cert: str
    """The signer's certificate (PEM), checked against the federation CA."""

    def signed_bytes(self) -> bytes:
        return signed_bytes(self.party, self.seq, self.hash, self.time)

    def to_json(self) -> bytes:
        """Canonical JSON bytes (one line of a head file, or the gossip payload)."""
        return canonical(asdict(self))

    @classmethod
    def from_json(cls, data: bytes | str) -> SignedHead:
        """A head from its JSON; ValueError if it is not one."""
        value = _json(data, "a signed head")
        names = {"party", "seq", "hash", "time", "signature", "cert"}
        if not isinstance(value, dict) or set(value) != names:
            raise ValueError(f"a signed head has exactly the keys {', '.join(sorted(names))}")
        if not isinstance(value["seq"], int) or isinstance(value["seq"], bool):
            raise ValueError("a signed head's seq is not an integer")
        if not all(isinstance(value[k], str) for k in names - {"seq"}):
            raise ValueError("a signed head's fields other than seq are text")
        return cls(**value)


def _json(data: bytes | str, what: str) -> Any:
    """`data` parsed, if it is at most MAX_HEAD_BYTES of JSON; ValueError naming `what`."""
    if len(data) > MAX_HEAD_BYTES:
        raise ValueError(f"{what} is at most {MAX_HEAD_BYTES} bytes")
    try:
        return json.loads(data)
    except ValueError:
        raise ValueError(f"{what} is not JSON") from None


def signed_bytes(party: str, seq: int, hash: str, time: str) -> bytes:
    """What a head's signature covers."""
    return canonical({"context": CONTEXT, "party": party, "seq": seq, "hash": hash, "time": time})


def sign_head(party: str, seq: int, hash: str, key_pem: bytes, cert_pem: bytes) -> SignedHead:
    """Sign (seq, hash) of `party`'s log with its private key (PEM, ECDSA)."""
    key = serialization.load_pem_private_key(key_pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise AuditError("audit heads are signed with an ECDSA key; this party's key is not one")
    time = now_text()
    signature = key.sign(signed_bytes(party, seq, hash, time), ec.ECDSA(hashes.SHA256()))
    return SignedHead(
        party, seq, hash, time, base64.b64encode(signature).decode("ascii"), cert_pem.decode()
    )


def check_head(head: SignedHead, ca_pem: bytes) -> None:
    """Check that `head` is signed by a certificate the CA issued to `head.party`;
    ValueError saying what fails. (Validity dates are not checked: an old head stays
    evidence after its certificate expires.)"""
    try:
        cert = x509.load_pem_x509_certificate(head.cert.encode())
        ca = x509.load_pem_x509_certificate(ca_pem)
    except ValueError:
        raise ValueError("its certificate is not a PEM certificate") from None
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        raise ValueError("its certificate was not issued by the federation CA") from None
    try:
        named = dns_identity(cert)
    except ValueError as exc:
        raise ValueError(f"its certificate: {exc}") from None
    if named != head.party:
        raise ValueError(f"it is for party {head.party!r} but its certificate is {named!r}'s")
    public = cert.public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey):
        raise ValueError("its certificate's key is not an ECDSA key")
    try:
        signature = base64.b64decode(head.signature, validate=True)
        public.verify(signature, head.signed_bytes(), ec.ECDSA(hashes.SHA256()))
    except (ValueError, InvalidSignature):
        raise ValueError("its signature does not verify") from None


ADVANCE = "advance"
"""A kept head with a higher seq than any held before of its sender."""
FORK = "fork"
"""Evidence: a head for a seq already held of its sender, with another hash."""
ROLLBACK = "rollback"
"""Evidence: a head with a lower seq than the sender's latest held one."""
MAX_LINE_BYTES = 1024
"""A stored head line (its certificate by SHA-256) is at most this long."""


@dataclass(frozen=True)
class HeldHead:
    """A head as a holder keeps it: which file and line, and the head (None if the line
    is unreadable: then `problem` says why). `kept` is why it was kept (ADVANCE, FORK,
    ROLLBACK; empty in files written before that was recorded) and `received` the
    holder's time of receipt (empty if unknown)."""

    holder: str
    path: Path
    line: int
    head: SignedHead | None
    problem: str = ""
    kept: str = ""
    received: str = ""


def cert_digest(pem: str) -> str:
    """SHA-256 (hex) of a certificate's PEM text, as a stored head line names it."""
    return hashlib.sha256(pem.encode()).hexdigest()


def stored_line(head: SignedHead, kept: str, received: str) -> bytes:
    """A head's line in a head file: canonical JSON, the certificate by its digest."""
    fields = {k: v for k, v in asdict(head).items() if k != "cert"}
    fields.update(cert_sha256=cert_digest(head.cert), kept=kept, received=received)
    return canonical(fields)


_STORED_KEYS = {"party", "seq", "hash", "time", "signature", "cert_sha256", "kept", "received"}


def parse_stored(line: bytes, certs: Mapping[str, str]) -> tuple[SignedHead, str, str]:
    """(head, kept, received) from a head file's line: a full signed head (the format
    before certificates were stored once) or a stored line whose certificate is in
    `certs` (digest -> PEM); ValueError says what is wrong."""
    value = _json(line, "a stored head")
    if isinstance(value, dict) and "cert" in value:
        return SignedHead.from_json(line), "", ""
    if not isinstance(value, dict) or set(value) != _STORED_KEYS:
        raise ValueError(f"a stored head has the keys {', '.join(sorted(_STORED_KEYS))}")
    if not all(isinstance(value[k], str) for k in _STORED_KEYS - {"seq"}):
        raise ValueError("a stored head's fields other than seq are text")
    cert = certs.get(value["cert_sha256"])
    if cert is None:
        raise ValueError(f"its certificate (SHA-256 {value['cert_sha256']}) is not stored")
    fields = {k: value[k] for k in ("party", "seq", "hash", "time", "signature")}
    head = SignedHead.from_json(canonical({**fields, "cert": cert}))
    return head, value["kept"], value["received"]


class HeadStore:
    """The heads this party received of each sender, in three files:

    - `<sender>.jsonl`: append-only, one line per kept head (the advancing heads the
      receiver chose to keep, and evidence: forks, rollbacks), its certificate named
      by SHA-256 (lines written before that carry the whole certificate: still read);
    - `certs/<sender>.jsonl`: each certificate of the sender once;
    - `latest/<sender>.json`: the sender's head with the highest seq, replaced
      atomically (it pins every earlier entry of the sender's chain).
    """

    def __init__(self, folder: Path | str) -> None:
        self.folder = Path(folder)
        self._certs: dict[str, dict[str, str]] = {}

    def path_for(self, party: str) -> Path:
        return self.folder / f"{party}.jsonl"

    def latest_path(self, party: str) -> Path:
        return self.folder / "latest" / f"{party}.json"

    def certs_path(self, party: str) -> Path:
        return self.folder / "certs" / f"{party}.jsonl"

    def certs(self, party: str) -> dict[str, str]:
        """The stored certificates of `party`: digest -> PEM (read once, then cached)."""
        if party not in self._certs:
            found: dict[str, str] = {}
            with contextlib.suppress(FileNotFoundError):
                for line in self.certs_path(party).read_bytes().splitlines():
                    with contextlib.suppress(ValueError, AttributeError, TypeError):
                        pem = json.loads(line)["pem"]
                        if isinstance(pem, str):
                            found[cert_digest(pem)] = pem
            self._certs[party] = found
        return self._certs[party]

    def record(self, head: SignedHead, kept: str = ADVANCE, received: str = "") -> None:
        """Append `head` to its sender's file (its certificate to the certificates
        file if new), fsync'd."""
        self._write(lambda: self._append(head, stored_line(head, kept, received)))

    def set_latest(self, head: SignedHead, received: str = "") -> None:
        """Make `head` its sender's latest (written beside, fsync'd, renamed over)."""

        def write() -> None:
            self._keep_cert(head)
            path = self.latest_path(head.party)
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(".tmp")
            temporary.write_bytes(stored_line(head, ADVANCE, received) + b"\n")
            with open(temporary, "rb+") as file:
                os.fsync(file.fileno())
            os.replace(temporary, path)

        self._write(write)

    def _append(self, head: SignedHead, line: bytes) -> None:
        self._keep_cert(head)
        append_line(self.path_for(head.party), line + b"\n")

    def _keep_cert(self, head: SignedHead) -> None:
        known = self.certs(head.party)
        digest = cert_digest(head.cert)
        if digest not in known:
            self.certs_path(head.party).parent.mkdir(parents=True, exist_ok=True)
            append_line(self.certs_path(head.party), canonical({"pem": head.cert}) + b"\n")
            known[digest] = head.cert

    def _write(self, write: Callable[[], None]) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            write()
        except OSError as exc:
            raise AuditError(f"cannot write audit heads in {self.folder}: {exc.strerror}") from exc

    def held(self, holder: str) -> dict[str, list[HeldHead]]:
        """Every head held here, by sender: the history file's lines in the order
        received, then the latest head if it is not among them."""
        found: dict[str, list[HeldHead]] = {}
        if not self.folder.is_dir():
            return found
        parties = {p.stem for p in self.folder.glob("*.jsonl")}
        parties |= {p.stem for p in (self.folder / "latest").glob("*.json")}
        for party in sorted(parties):
            self._certs.pop(party, None)  # read afresh: another process may have added
            rows = found.setdefault(party, [])
            for path, number, line in self._lines(party):
                try:
                    head, kept, received = parse_stored(line, self.certs(party))
                except ValueError as exc:
                    rows.append(HeldHead(holder, path, number, None, str(exc)))
                    continue
                if path.suffix == ".json" and any(r.head == head for r in rows):
                    continue  # the latest is also in the history
                rows.append(HeldHead(holder, path, number, head, "", kept, received))
        return found

    def _lines(self, party: str) -> Iterator[tuple[Path, int, bytes]]:
        for path in (self.path_for(party), self.latest_path(party)):
            with contextlib.suppress(FileNotFoundError):
                for number, line in enumerate(path.read_bytes().splitlines(), start=1):
                    yield path, number, line


def held_by_others(stores: Mapping[str, HeadStore], party: str) -> list[HeldHead]:
    """The heads of `party` held by every other holder in `stores` (holder id -> store)."""
    out: list[HeldHead] = []
    for holder, store in stores.items():
        if holder != party:
            out.extend(store.held(holder).get(party, []))
    return out
