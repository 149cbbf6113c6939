"""CrypTen backend pieces that need no federation: wire encoding, refusals, and the
AES-CTR streams that replace CrypTen's own Mersenne Twister generators."""

from __future__ import annotations

import math
import queue
import secrets
import threading
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from smpc_ehr.backend_names import BACKEND_NAMES
from smpc_ehr.backends import BACKENDS, check_backend, supports
from smpc_ehr.backends.backend import FULL_MODE
from smpc_ehr.backends.crypten import communicator as comm
from smpc_ehr.backends.crypten import prng
from smpc_ehr.backends.crypten.backend import run_job
from smpc_ehr.backends.crypten.compat import import_crypten
from smpc_ehr.backends.crypten.entry import INSECURE_TFP_ENV
from smpc_ehr.backends.opening import OPENERS
from smpc_ehr.errors import Refusal, TransportError


@pytest.mark.parametrize(
    "tensor",
    [
        torch.tensor([1, -2, 2**62], dtype=torch.int64),
        torch.arange(12, dtype=torch.int64).reshape(3, 4),
        torch.tensor(7, dtype=torch.int64),
        torch.tensor([0.5, -1.25], dtype=torch.float64),
    ],
)
def test_tensors_travel_as_raw_arrays(tensor) -> None:
    payload = comm.encode_tensor(tensor)
    back = comm.decode_tensor(payload)
    assert back.dtype == tensor.dtype and back.shape == tensor.shape
    assert torch.equal(back, tensor)
    assert tensor.numpy().astype(tensor.numpy().dtype.newbyteorder("<")).tobytes() in payload


def test_objects_travel_as_json_never_pickle() -> None:
    obj = {"size": torch.Size([3, 4]), "n": 5, "flags": [True, None, 1.5, "x"]}
    payload = comm.encode_object(obj)
    assert payload.startswith(b"{") and b"\x80" not in payload  # JSON text, not a pickle
    assert comm.decode_object(payload) == obj
    assert isinstance(comm.decode_object(payload)["size"], torch.Size)
    with pytest.raises(TypeError, match="plain data only"):
        comm.encode_object(object())
    with pytest.raises(TransportError):
        comm.decode_object(b"\x80\x04not json")
    with pytest.raises(TransportError):
        comm.decode_tensor(b"\xff\xff garbage")


def test_trusted_first_party_is_refused_outside_tests(monkeypatch) -> None:
    monkeypatch.delenv(INSECURE_TFP_ENV, raising=False)
    channel = SimpleNamespace(parties=["a", "b"], me="a")
    with pytest.raises(Refusal, match="trusted-first-party"):
        run_job(channel, None, round_seconds=1, provider="TFP")  # type: ignore[arg-type]
    with pytest.raises(Refusal, match="needs a dealer"):
        check_backend("crypten", 2, has_dealer=False)
    check_backend("crypten", 2, has_dealer=True)  # a dealer makes two hospitals enough
    with pytest.raises(Refusal, match="at least 2 parties"):
        check_backend("crypten", 1, has_dealer=True)


def test_mpyc_still_needs_three_parties_and_crypten_does_not() -> None:
    with pytest.raises(Refusal, match="at least 3 parties"):
        check_backend("mpyc", 2, has_dealer=True)
    check_backend("mpyc", 3, has_dealer=False)  # MPyC needs no dealer
    check_backend("crypten", 2, has_dealer=True)
    with pytest.raises(Refusal, match="not available"):
        check_backend("spdz", 3, has_dealer=True)


def test_one_registry_names_every_backend_its_scheme_and_capabilities() -> None:
    assert tuple(BACKENDS) == BACKEND_NAMES  # what study templates accept
    assert {b.sharing for b in BACKENDS.values()} <= set(OPENERS)  # the coordinator opens it
    assert supports("crypten", FULL_MODE)
    assert not supports("mpyc", FULL_MODE) and not supports("spdz", FULL_MODE)


# -- CrypTen's own generators: AES-256-CTR streams (backends/crypten/prng.py) ----------

CPU = torch.device("cpu")


def keystream_words(seed: bytes, count: int) -> np.ndarray:
    """An independent reference: AES-256-CTR (zero nonce, key = seed) on zeros, as int64."""
    data = Cipher(algorithms.AES(seed), modes.CTR(bytes(16))).encryptor().update(bytes(8 * count))
    return np.frombuffer(data, dtype="<i8")


def as_rank(monkeypatch, crypten, rank: int, n: int, prev: bytes, nxt: bytes) -> None:
    """CrypTen as rank `rank` of `n` would see itself, with the pairwise stream seeds."""
    stub = SimpleNamespace(get_rank=lambda: rank, get_world_size=lambda: n)
    monkeypatch.setattr(crypten.communicator, "get", lambda: stub)
    monkeypatch.setattr(
        crypten,
        "generators",
        {"prev": {CPU: prng.StreamGenerator(prev)}, "next": {CPU: prng.StreamGenerator(nxt)}},
    )


@pytest.mark.parametrize("n", [2, 3, 5])
def test_zero_sharings_are_drawn_from_the_pairwise_aes_ctr_streams(monkeypatch, n: int) -> None:
    """Each party's PRZS share is its 'prev' keystream minus its 'next' keystream (xor for
    binary), the shares add up to zero, and an input sharing is that plus the value."""
    crypten = import_crypten()
    primitives = crypten.mpc.primitives
    size = (4, 50)
    count = math.prod(size)
    seeds = [secrets.token_bytes(32) for _ in range(n)]  # seeds[r]: rank r's "next"
    arithmetic, binary, inputs = [], [], []
    value = torch.arange(count, dtype=torch.float64).reshape(size)
    for rank in range(n):
        prev, nxt = seeds[(rank - 1) % n], seeds[rank]
        as_rank(monkeypatch, crypten, rank, n, prev, nxt)
        share = primitives.ArithmeticSharedTensor.PRZS(size).share
        expected = keystream_words(prev, count) - keystream_words(nxt, count)  # wraps mod 2^64
        assert np.array_equal(share.numpy().reshape(-1), expected)
        arithmetic.append(share)
        bits = primitives.BinarySharedTensor.PRZS(size).share
        reference = (
            keystream_words(prev, 2 * count)[count:] ^ keystream_words(nxt, 2 * count)[count:]
        )
        assert np.array_equal(bits.numpy().reshape(-1), reference)  # the streams continue
        binary.append(bits)
        as_rank(monkeypatch, crypten, rank, n, prev, nxt)  # fresh streams for the input
        shared = primitives.ArithmeticSharedTensor(value if rank == 0 else None, src=0, size=size)
        inputs.append(shared.share)
    assert torch.equal(torch.stack(arithmetic).sum(0), torch.zeros(size, dtype=torch.int64))
    xor = binary[0].clone()
    for b in binary[1:]:
        xor ^= b
    assert torch.equal(xor, torch.zeros(size, dtype=torch.int64))
    assert torch.equal(torch.stack(inputs).sum(0), (value * 2**16).long())


def test_every_crypten_module_draws_through_the_stream_functions() -> None:
    # importing the backend installed the streams; every module holding CrypTen's own
    # draw functions by name was given ours
    assert prng.unreplaced_modules() == []
    crypten = import_crypten()
    assert crypten.mpc.primitives.arithmetic.generate_random_ring_element is (
        prng.generate_random_ring_element
    )
    assert crypten._setup_prng is prng.setup_streams


class _ThreadComm:
    """The parts of a communicator `setup_streams` uses, for n ranks on threads."""

    def __init__(self, boxes: dict[tuple[int, int], queue.Queue], rank: int, n: int) -> None:
        self._boxes, self._rank, self._n = boxes, rank, n

    def get_rank(self) -> int:
        return self._rank

    def get_world_size(self) -> int:
        return self._n

    def isend(self, tensor: torch.Tensor, dst: int) -> Any:
        self._boxes[(self._rank, dst)].put(tensor.clone())
        return SimpleNamespace(wait=lambda: None)

    def irecv(self, tensor: torch.Tensor, src: int) -> Any:
        box = self._boxes[(src, self._rank)]
        return SimpleNamespace(wait=lambda: tensor.copy_(box.get(timeout=10)))

    def broadcast(self, tensor: torch.Tensor, src: int) -> torch.Tensor:
        for dst in range(self._n):
            if self._rank == src and dst != src:
                self._boxes[(src, dst)].put(tensor.clone())
        return tensor if self._rank == src else self._boxes[(src, self._rank)].get(timeout=10)


def test_crypten_init_seeds_neighbours_with_one_shared_stream(monkeypatch) -> None:
    """`setup_streams` (CrypTen's seeding at init): rank r's 'next' and rank r+1's 'prev'
    are the same AES-CTR stream; the local streams are all different."""
    crypten = import_crypten()
    n = 3
    boxes = {(a, b): queue.Queue() for a in range(n) for b in range(n)}
    tables: list[dict[str, Any]] = [{} for _ in range(n)]
    local = threading.local()
    monkeypatch.setattr(crypten.communicator, "get", lambda: local.comm)
    monkeypatch.setattr(crypten, "generators", _PerThread(local))

    def seed(rank: int) -> None:
        local.comm = _ThreadComm(boxes, rank, n)
        local.generators = {"prev": {}, "next": {}, "local": {}, "global": {}}
        prng.setup_streams()
        tables[rank] = local.generators

    threads = [threading.Thread(target=seed, args=(r,)) for r in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    draws = [{k: g[CPU] for k, g in t.items()} for t in tables]
    for rank in range(n):
        after = draws[(rank + 1) % n]
        assert isinstance(draws[rank]["next"], prng.StreamGenerator)
        assert torch.equal(draws[rank]["next"].stream.ring(64), after["prev"].stream.ring(64))
    locals_ = [d["local"].stream.ring(8) for d in draws]
    assert not torch.equal(locals_[0], locals_[1]) and not torch.equal(locals_[1], locals_[2])
    shared = [torch.rand(4, generator=d["global"]) for d in draws]
    assert all(torch.equal(shared[0], s) for s in shared)  # dropout's public generator


class _PerThread(dict):
    """`crypten.generators` as each test thread sees its own."""

    def __init__(self, local: threading.local) -> None:
        super().__init__()
        self._local = local

    def __getitem__(self, key: str) -> Any:
        return self._local.generators[key]

    def values(self) -> Any:
        return self._local.generators.values()
