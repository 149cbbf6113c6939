"""CrypTen's own random generators, made AES-256-CTR streams instead of Mersenne Twisters.

CrypTen keeps four generators in `crypten.generators`: "prev" and "next", shared with
the neighbouring ranks (rank r's "next" is rank r+1's "prev"), from which every
pseudo-random zero sharing (PRZS) is drawn: each input sharing, each party's share
turned into a binary sharing inside every comparison, and our output
re-randomisation; "local", for the party's own random draws; and "global", shared by
all parties (only dropout uses it). Upstream they are torch Mersenne Twisters seeded
with 64 random bits: a Mersenne Twister's whole state follows from 624 of its 32-bit
outputs, after which every later output is known.

torch's random functions accept only a `torch.Generator`, so a generator cannot be
swapped for another kind underneath them. But CrypTen draws from its generators
through two functions only, `crypten.common.rng.generate_random_ring_element` and
`generate_kbit_random_tensor` (imported by name into a few CrypTen modules). `install`
replaces, in one step: CrypTen's seeding at `crypten.init()` (`crypten._setup_prng`),
which here makes "prev", "next" and "local" `StreamGenerator`s on fresh 32-byte seeds
(the "next" seed sent to rank + 1 over the job's mesh, as CrypTen sends its own), and
those two functions, which draw from a `StreamGenerator`'s `SeedStream` (the dealer's
AES-256-CTR construction) and leave any other generator (CrypTen's TTP provider's, a
test's) to CrypTen's code. "global" stays a torch generator: all parties hold its
seed, so it hides nothing from any of them.
"""

from __future__ import annotations

import secrets
import sys
import threading
from typing import Any

import numpy as np
import torch

from smpc_ehr.backends.crypten.compat import import_crypten
from smpc_ehr.dealer_protocol.streams import SEED_BYTES, SeedStream, Size

RING_SIZE = 2**64
_CPU = torch.device("cpu")
_lock = threading.Lock()
_originals: dict[str, Any] = {}
"""CrypTen's own draw functions, by name, once `install` has replaced them."""


class StreamGenerator:
    """Stands where CrypTen expects a `torch.Generator`: an AES-256-CTR stream on a seed.

    Two parties that hold the same seed draw the same values as long as they draw the
    same sizes in the same order, which CrypTen's PRZS already requires of its
    generators.
    """

    device = _CPU

    def __init__(self, seed: bytes) -> None:
        self.stream = SeedStream(seed)

    def manual_seed(self, seed: int) -> StreamGenerator:
        raise TypeError("an AES-CTR stream generator takes a 32-byte seed, not manual_seed")


def _generator_for(generator: Any, kwargs: dict[str, Any]) -> Any:
    """What CrypTen's functions draw from: the given generator, else the local one."""
    if generator is not None:
        return generator
    device = kwargs.get("device") or _CPU
    device = torch.device(device) if isinstance(device, str) else device
    return import_crypten().generators["local"][device]


def generate_random_ring_element(
    size: Size, ring_size: int = RING_SIZE, generator: Any = None, **kwargs: Any
) -> torch.Tensor:
    """CrypTen's `generate_random_ring_element`: uniform int64 (all of Z_2^64)."""
    generator = _generator_for(generator, kwargs)
    if not isinstance(generator, StreamGenerator):
        return _originals["generate_random_ring_element"](
            size, ring_size=ring_size, generator=generator, **kwargs
        )
    if ring_size != RING_SIZE:
        raise ValueError(f"the AES-CTR generators draw from Z_2^64 only, not a ring of {ring_size}")
    return generator.stream.ring(size)


def generate_kbit_random_tensor(
    size: Size, bitlength: int | None = None, generator: Any = None, **kwargs: Any
) -> torch.Tensor:
    """CrypTen's `generate_kbit_random_tensor`: uniform in [0, 2^bitlength)."""
    generator = _generator_for(generator, kwargs)
    if not isinstance(generator, StreamGenerator):
        return _originals["generate_kbit_random_tensor"](
            size, bitlength=bitlength, generator=generator, **kwargs
        )
    return generator.stream.bits(size, bitlength)


def _seed_tensor(seed: bytes) -> torch.Tensor:
    return torch.from_numpy(np.frombuffer(seed, dtype="<i8").astype(np.int64))


def _seed_bytes(tensor: torch.Tensor) -> bytes:
    return tensor.numpy().astype("<i8").tobytes()


def setup_streams() -> None:
    """Replaces `crypten._setup_prng`, which `crypten.init()` calls once the job's
    communicator is in place: fresh seeds, the pairwise one through the communicator."""
    crypten = import_crypten()
    comm = crypten.communicator.get()
    rank, world = comm.get_rank(), comm.get_world_size()
    next_seed = secrets.token_bytes(SEED_BYTES)
    prev_seed = next_seed
    if world >= 2:
        received = torch.zeros(SEED_BYTES // 8, dtype=torch.int64)
        sent = comm.isend(_seed_tensor(next_seed), (rank + 1) % world)
        pending = comm.irecv(received, src=(rank - 1) % world)
        sent.wait()
        pending.wait()
        prev_seed = _seed_bytes(received)
    shared = torch.tensor(secrets.randbits(63), dtype=torch.int64)
    global_seed = int(comm.broadcast(shared, 0).item())
    generators = crypten.generators
    for table in generators.values():
        table.clear()  # only the CPU: this backend runs no CUDA
    generators["prev"][_CPU] = StreamGenerator(prev_seed)
    generators["next"][_CPU] = StreamGenerator(next_seed)
    generators["local"][_CPU] = StreamGenerator(secrets.token_bytes(SEED_BYTES))
    generators["global"][_CPU] = torch.Generator(device=_CPU).manual_seed(global_seed)


_REPLACEMENTS = {
    "generate_random_ring_element": generate_random_ring_element,
    "generate_kbit_random_tensor": generate_kbit_random_tensor,
}


def install() -> None:
    """Make CrypTen seed and draw from AES-CTR streams (idempotent)."""
    crypten = import_crypten()
    with _lock:
        if not _originals:
            rng = sys.modules["crypten.common.rng"]
            _originals.update({name: getattr(rng, name) for name in _REPLACEMENTS})
            # every CrypTen module that imported them by name holds its own reference
            for name, module in list(sys.modules.items()):
                if name == "crypten" or name.startswith("crypten."):
                    for attr, original in _originals.items():
                        if getattr(module, attr, None) is original:
                            setattr(module, attr, _REPLACEMENTS[attr])
        crypten._setup_prng = setup_streams  # type: ignore[attr-defined]


def unreplaced_modules() -> list[str]:
    """CrypTen modules still holding CrypTen's own draw functions (for tests: none)."""
    found = []
    for name, module in list(sys.modules.items()):
        if name == "crypten" or name.startswith("crypten."):
            for attr, original in _originals.items():
                if getattr(module, attr, None) is original:
                    found.append(f"{name}.{attr}")
    return found
