"""Running one job's secure program with CrypTen over the mesh.

CrypTen is synchronous and keeps global state (its communicator, config and random
generators), so a CrypTen job runs alone, on a worker thread, between
`crypten.init()` and `crypten.uninit()`, with our `MeshCommunicator` installed where
CrypTen looks for its communicator. Correlated randomness comes from the roster's
dealer (`provider.DealerProvider`); CrypTen's trusted-first-party provider, in which
party 0 makes every Beaver triple in the clear, is refused unless a test asks for it.

Precision: values are fixed-point in Z_2^64 with 16 fractional bits (CrypTen's
default, resolution 2^-16 ~ 1.5e-5); integers are exact up to 2^47. Products are
truncated after each multiplication, so a product may be off by one unit of 2^-16.
Security: secure against up to n-1 colluding parties provided the dealer colludes with
none of them. CrypTen's own pairwise generators (for its zero-sharings) are torch
Mersenne Twister generators seeded with 64 random bits, which is not a cryptographic
generator; the dealer's randomness is AES-CTR (see `streams`).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from smpc_ehr.backends import check_backend, insecure_tfp_allowed
from smpc_ehr.backends.base import OutputShareSet, SecretVector, SecureOps, SecureProgram
from smpc_ehr.backends.crypten.communicator import MeshCommunicator
from smpc_ehr.backends.crypten.compat import import_crypten
from smpc_ehr.errors import Refusal
from smpc_ehr.transport.mesh import JobChannel

crypten = import_crypten()

import torch  # noqa: E402

FRAC_BITS = 16
RING_MODULUS = 2**64

_job_lock = threading.Lock()
_ready: MeshCommunicator | None = None
"""The communicator `crypten.init()` will take up (CrypTen checks it is not yet set)."""
_current: MeshCommunicator | None = None


def _install_communicator(comm: MeshCommunicator | None) -> None:
    """Replace the four functions of `crypten.communicator` that choose its communicator,
    so that `crypten.init()` takes up `comm` and every CrypTen module then uses it."""
    global _ready, _current
    _ready, _current = comm, None
    module: Any = crypten.communicator

    def get() -> MeshCommunicator:
        if _current is None:
            raise RuntimeError("no CrypTen job is running")
        return _current

    def init(*args: Any, **kwargs: Any) -> None:
        global _current
        _current = _ready

    module.get = get
    module._init = init
    module.is_initialized = lambda: _current is not None
    module.uninit = lambda: _install_communicator(None)


class CryptenOps(SecureOps):
    """`SecureOps` on CrypTen fixed-point tensors (exact for integers below 2^47)."""

    def __init__(self, comm: MeshCommunicator) -> None:
        self.n_parties = comm.get_world_size()
        self.my_index = comm.get_rank()

    def input_ints(self, values: Sequence[int], bits: int) -> list[SecretVector]:
        if bits > 47:
            raise ValueError(f"CrypTen holds integers exactly up to 47 bits, not {bits}")
        mine = torch.tensor([float(v) for v in values], dtype=torch.float64)
        return [
            crypten.cryptensor(mine if src == self.my_index else torch.zeros_like(mine), src=src)
            for src in range(self.n_parties)
        ]

    def add(self, a: SecretVector, b: SecretVector) -> SecretVector:
        return a + b

    def mul(self, a: SecretVector, b: SecretVector) -> SecretVector:
        return a * b

    def ge_public(self, a: SecretVector, bound: int) -> SecretVector:
        return a >= bound

    def output_shares(self, secrets: Sequence[SecretVector]) -> OutputShareSet:
        """This party's additive shares for the coordinator, re-randomised with a fresh
        sharing of zero so that the n shares reveal the values and nothing else."""
        primitives = crypten.mpc.primitives
        values: list[int] = []
        for secret in secrets:
            shared = secret._tensor  # ArithmeticSharedTensor (comparisons return arithmetic)
            # Bring every output to the same scale 2^FRAC_BITS (comparison results come at
            # scale 1); scales are powers of two, so this is an exact integer multiple.
            factor = 2**FRAC_BITS // int(shared.encoder.scale)
            zero = primitives.ArithmeticSharedTensor.PRZS(shared.share.size())
            share = shared.share * factor + zero.share
            values.extend(int(v) for v in share.reshape(-1).numpy().astype(np.uint64))
        return OutputShareSet(
            scheme="additive",
            modulus=RING_MODULUS,
            point=self.my_index + 1,
            degree=0,
            values=values,
            public_meta={"frac_bits": str(FRAC_BITS)},
        )


def run_job(
    channel: JobChannel, program: SecureProgram, *, round_seconds: float, provider: str
) -> OutputShareSet:
    """Run this party's side of `program` with CrypTen; blocks, so call it on a worker thread.

    `provider` is "DEALER" (a dealer session must be installed, see `provider.install`)
    or "TFP" (only where `tfp_allowed()`). Raises the channel's failure on abort.
    """
    check_backend("crypten", len(channel.parties), has_dealer=provider == "DEALER")
    if provider == "TFP" and not insecure_tfp_allowed():
        raise Refusal(
            "CrypTen's trusted-first-party provider lets party 0 see every Beaver triple "
            "in the clear, which breaks the privacy of the other parties; it is for tests only"
        )
    with _job_lock:
        comm = MeshCommunicator(channel, round_seconds)
        _install_communicator(comm)
        crypten.cfg.mpc.provider = provider
        try:
            crypten.init()
            ops = CryptenOps(comm)
            secrets = asyncio.run(program(ops))  # the ops are synchronous: no real awaiting
            return ops.output_shares(secrets)
        except Exception:
            if channel.failure is not None:
                raise channel.failure from None
            raise
        finally:
            crypten.uninit()
            _install_communicator(None)
