"""Signed heads: a party's statement "my audit log's entry `seq` has hash `hash`",
signed with its TLS key (ECDSA) and carrying its certificate, so that any member
holding the federation's CA certificate can check it later without asking anyone.

A party sends its heads to the others (gossip.py); each keeps what it receives in an
append-only JSON-lines file per sender (`HeadStore`). A head another party holds
pins the sender's log up to `seq`: rewriting or truncating that part shows.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

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
        if len(data) > MAX_HEAD_BYTES:
            raise ValueError(f"a signed head is at most {MAX_HEAD_BYTES} bytes")
        try:
            value = json.loads(data)
        except ValueError:
            raise ValueError("a signed head is not JSON") from None
        names = {"party", "seq", "hash", "time", "signature", "cert"}
        if not isinstance(value, dict) or set(value) != names:
            raise ValueError(f"a signed head has exactly the keys {', '.join(sorted(names))}")
        if not isinstance(value["seq"], int) or isinstance(value["seq"], bool):
            raise ValueError("a signed head's seq is not an integer")
        if not all(isinstance(value[k], str) for k in names - {"seq"}):
            raise ValueError("a signed head's fields other than seq are text")
        return cls(**value)


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


@dataclass(frozen=True)
class HeldHead:
    """A head as a holder keeps it: which file and line, and the head (None if the line
    is unreadable: then `problem` says why)."""

    holder: str
    path: Path
    line: int
    head: SignedHead | None
    problem: str = ""


class HeadStore:
    """The heads this party received, one append-only file per sender."""

    def __init__(self, folder: Path | str) -> None:
        self.folder = Path(folder)

    def path_for(self, party: str) -> Path:
        return self.folder / f"{party}.jsonl"

    def record(self, head: SignedHead) -> None:
        """Append `head` to its sender's file, fsync'd."""
        self.folder.mkdir(parents=True, exist_ok=True)
        line = head.to_json() + b"\n"
        try:
            append_line(self.path_for(head.party), line)
        except OSError as exc:
            raise AuditError(f"cannot write audit heads in {self.folder}: {exc.strerror}") from exc

    def held(self, holder: str) -> dict[str, list[HeldHead]]:
        """Every head held here, by sender (the file name), in the order received."""
        found: dict[str, list[HeldHead]] = {}
        if not self.folder.is_dir():
            return found
        for path in sorted(self.folder.glob("*.jsonl")):
            rows = found.setdefault(path.stem, [])
            for number, line in enumerate(path.read_bytes().splitlines(), start=1):
                try:
                    rows.append(HeldHead(holder, path, number, SignedHead.from_json(line)))
                except ValueError as exc:
                    rows.append(HeldHead(holder, path, number, None, str(exc)))
        return found


def held_by_others(stores: Mapping[str, HeadStore], party: str) -> list[HeldHead]:
    """The heads of `party` held by every other holder in `stores` (holder id -> store)."""
    out: list[HeldHead] = []
    for holder, store in stores.items():
        if holder != party:
            out.extend(store.held(holder).get(party, []))
    return out
