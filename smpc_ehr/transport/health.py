"""What every server says about itself in its Health reply (party, coordinator, dealer):
version, certificate expiry, which MPC backends are loaded and, for a party, the
templates it approves. `smpc-ehr health` and `smpc-ehr templates` print these."""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, Set
from pathlib import Path

from cryptography import x509

from smpc_ehr import __version__
from smpc_ehr.wire import party_pb2

log = logging.getLogger(__name__)

BACKEND_LIBRARIES = {"mpyc": "mpyc.runtime", "crypten": "crypten"}
"""The module whose presence in this process means a backend's library is loaded, so
its next job does not pay for loading it."""


def ready_backends() -> list[str]:
    """The backends whose library this process has loaded (by its warm-up or a job)."""
    return [name for name, module in BACKEND_LIBRARIES.items() if module in sys.modules]


def cert_not_after(cert: Path) -> int:
    """The certificate's expiry in Unix seconds; 0 if the file cannot be read now."""
    try:
        loaded = x509.load_pem_x509_certificate(Path(cert).read_bytes())
    except (OSError, ValueError) as exc:
        log.warning("cannot read certificate %s for a health reply: %s", cert, exc)
        return 0
    return int(loaded.not_valid_after_utc.timestamp())


def health_reply(
    identity: str,
    role: str,
    cert: Path,
    *,
    busy_with: str | None,
    show_job: bool = False,
    approved: Set[str] = frozenset(),
    names: Mapping[str, str] | None = None,
    backends: bool = False,
) -> party_pb2.HealthReply:
    """A Health reply; `busy_with` is the current job id ("" when busy without one),
    sent as `current_job` only with `show_job`: the coordinator, which runs the jobs,
    may read it; any other roster member learns only `idle` or `busy` (a job id would
    tell another hospital or an analyst which job, whose, runs now).

    `approved` (with `names` by hash) is a party's approved template hashes and
    `backends` whether to report loaded backends (parties run them, others do not)."""
    names = names or {}
    return party_pb2.HealthReply(
        identity=identity,
        role=role,
        version=__version__,
        state="idle" if busy_with is None else "busy",
        current_job=(busy_with or "") if show_job else "",
        backends_ready=ready_backends() if backends else [],
        cert_not_after=cert_not_after(cert),
        approved=[
            party_pb2.ApprovedTemplate(hash=h, name=names.get(h, "")) for h in sorted(approved)
        ],
    )
