"""MPC backends: each runs a job's secure part over the mesh behind `SecureOps`.

Analyses are written once against `smpc_ehr.backends.base.SecureOps`; a backend
turns those operations into its own protocol: MPyC (Shamir sharing over a prime
field, honest majority, n >= 3) or CrypTen (additive sharing over Z_2^64, n >= 2,
Beaver triples from the roster's dealer). `shamir` and `opening` recombine output
shares at the coordinator. Backend modules are imported only when a job needs them,
so a party that only runs MPyC never loads torch.
"""

import os

from smpc_ehr.errors import Refusal

BACKENDS = ("mpyc", "crypten")
"""Backends this build can run; a job naming another one is refused."""

INSECURE_TFP_ENV = "SMPC_EHR_INSECURE_TFP_FOR_TESTS"
"""Set to 1 only by tests that run CrypTen without a dealer (trusted first party)."""


def insecure_tfp_allowed() -> bool:
    """Whether CrypTen's trusted-first-party provider may be used: tests only."""
    return os.environ.get(INSECURE_TFP_ENV) == "1"


def check_backend(backend: str, n_parties: int, has_dealer: bool) -> None:
    """Refuse, with the reason, a backend this build lacks or one that cannot serve this
    federation securely (checked by the coordinator and again by every party)."""
    if backend not in BACKENDS:
        raise Refusal(f"backend {backend!r} is not available (have: {', '.join(BACKENDS)})")
    if backend == "mpyc":
        from smpc_ehr.backends.mpyc_backend import check_party_count

        check_party_count(n_parties)
    elif n_parties < 2:
        raise Refusal(f"the CrypTen backend needs at least 2 parties, got {n_parties}")
    elif not has_dealer and not insecure_tfp_allowed():
        raise Refusal(
            "the CrypTen backend needs a dealer in the roster to supply Beaver triples; "
            "this federation has none (CrypTen's trusted-first-party alternative would "
            "let one hospital see every triple in the clear, so it is refused)"
        )
