"""One CrypTen job on a party: a dealer session around the computation, or (tests) TFP."""

from __future__ import annotations

from smpc_ehr.backends.crypten import provider
from smpc_ehr.backends.crypten.backend import run_job
from smpc_ehr.securemath.ops import OutputShareSet, ProgressSink, SecureProgram
from smpc_ehr.transport.mesh import JobChannel
from smpc_ehr.transport.tls import TlsIdentity

DealerLink = tuple[TlsIdentity, str, str]
"""How a party reaches the dealer: its own TLS identity, the dealer's id and address."""
DEALER_SHARE = 0.75
"""A dealer call may take this share of a round, and must end the rest of a round (or
of the job's time left at the start, if less) before the job's deadline. The other
parties wait up to a round for rank 0 while it waits for the dealer: a silent dealer
must be reported first, naming the dealer, or a party's round or the job's deadline
runs out first and a hospital is blamed."""


def run_crypten_job(
    channel: JobChannel,
    program: SecureProgram,
    *,
    round_seconds: float,
    dealer: DealerLink | None,
    on_progress: ProgressSink | None = None,
) -> OutputShareSet:
    """Blocking: run `program` with correlated randomness from `dealer`.

    Without a dealer only the test-only trusted-first-party provider remains, which
    `run_job` refuses outside tests. A dealer that fails mid-job fails the job here and,
    through the channel, on every other party at once.
    """
    if dealer is None:
        return run_job(
            channel, program, round_seconds=round_seconds, provider="TFP", on_progress=on_progress
        )
    tls, dealer_id, address = dealer
    margin = (1 - DEALER_SHARE) * min(round_seconds, channel.remaining())
    try:
        with provider.DealerSession.open(
            tls,
            dealer_id,
            address,
            channel.job_id,
            channel.parties,
            channel.my_index,
            deadline_seconds=max(channel.remaining(), 1.0),
            rpc_seconds=DEALER_SHARE * round_seconds,
            answer_by=channel.deadline - margin,
        ) as session:
            provider.install(session)
            try:
                return run_job(
                    channel,
                    program,
                    round_seconds=round_seconds,
                    provider="DEALER",
                    on_progress=on_progress,
                )
            finally:
                provider.uninstall()
    except Exception as exc:
        channel.fail(exc)
        raise
