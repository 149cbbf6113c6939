"""One CrypTen job on a party: with the dealer's session around it, or (tests) TFP."""

from __future__ import annotations

from smpc_ehr.backends.base import OutputShareSet, SecureProgram
from smpc_ehr.backends.crypten.backend import run_job
from smpc_ehr.transport.mesh import JobChannel
from smpc_ehr.transport.tls import TlsIdentity

DealerLink = tuple[TlsIdentity, str, str]
"""How a party reaches the dealer: its own TLS identity, the dealer's id and address."""


def run_crypten_job(
    channel: JobChannel,
    program: SecureProgram,
    *,
    round_seconds: float,
    dealer: DealerLink | None,
) -> OutputShareSet:
    """Blocking: run `program` with correlated randomness from `dealer` (None: TFP, tests)."""
    if dealer is None:
        return run_job(channel, program, round_seconds=round_seconds, provider="TFP")
    raise NotImplementedError("dealer sessions are not wired yet")
