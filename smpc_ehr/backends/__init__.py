"""MPC backends: each runs a job's secure part over the mesh behind `SecureOps`.

Analyses are written once against `smpc_ehr.securemath.ops.SecureOps`; a backend
turns those operations into its own protocol: MPyC (Shamir sharing over a prime
field, honest majority, n >= 3) or CrypTen (additive sharing over Z_2^64, n >= 2,
Beaver triples from the roster's dealer). `BACKENDS` is the one registry of them
(`backend.Backend`: properties, checks, how a job runs); `shamir` and `opening`
recombine output shares at the coordinator. Backend implementations are imported only
when a job needs them, so a party that only runs MPyC never loads torch.
"""

from smpc_ehr.backend_names import BACKEND_NAMES
from smpc_ehr.backends.backend import Backend
from smpc_ehr.backends.crypten.entry import CryptenBackend
from smpc_ehr.backends.mpyc.entry import MpycBackend
from smpc_ehr.errors import Refusal

BACKENDS: dict[str, Backend] = {b.name: b for b in (MpycBackend(), CryptenBackend())}
"""Backends this build can run, by name; a job naming another one is refused."""
if tuple(BACKENDS) != BACKEND_NAMES:
    raise ImportError(f"backend registry {tuple(BACKENDS)} != backend_names {BACKEND_NAMES}")


def get_backend(name: str) -> Backend:
    """The backend called `name`; Refusal, naming the ones there are, if none is."""
    backend = BACKENDS.get(name)
    if backend is None:
        raise Refusal(f"backend {name!r} is not available (have: {', '.join(BACKENDS)})")
    return backend


def check_backend(backend: str, n_parties: int, has_dealer: bool) -> None:
    """Refuse, with the reason, a backend this build lacks or one that cannot serve this
    federation securely (checked by the coordinator and again by every party)."""
    get_backend(backend).check(n_parties, has_dealer)


def supports(backend: str, capability: str) -> bool:
    """Whether backend `backend` has `capability` (False for an unknown backend)."""
    found = BACKENDS.get(backend)
    return found is not None and capability in found.capabilities
