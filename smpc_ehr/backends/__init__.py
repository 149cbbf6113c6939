"""MPC backends: each runs a job's secure part over the mesh behind `SecureOps`.

Analyses are written once against `smpc_ehr.backends.base.SecureOps`; a backend
turns those operations into its own protocol (MPyC: Shamir sharing over a prime
field, honest majority). `shamir` recombines output shares at the coordinator.
"""

from smpc_ehr.errors import Refusal

BACKENDS = ("mpyc",)
"""Backends this build can run; a job naming another one is refused."""


def check_backend(backend: str, n_parties: int) -> None:
    """Refuse, with the reason, a backend this build lacks or one that cannot serve
    `n_parties` securely (checked by the coordinator and again by every party)."""
    if backend not in BACKENDS:
        raise Refusal(f"backend {backend!r} is not available (have: {', '.join(BACKENDS)})")
    if backend == "mpyc":
        from smpc_ehr.backends.mpyc_backend import check_party_count

        check_party_count(n_parties)
