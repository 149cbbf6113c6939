"""Party side and dealer side agree: the real DealerProvider on every simulated party,
with rank 0's corrections computed by dealer_math from copies of every party's seed,
reconstructs valid triples, square pairs, wrap counts and random bits."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
import torch

from smpc_ehr.backends.crypten.compat import import_crypten
from smpc_ehr.backends.crypten.provider import DealerProvider
from smpc_ehr.dealer_protocol import correlations as dealer_math
from smpc_ehr.dealer_protocol.correlations import Request, kwargs_from_json, make_request
from smpc_ehr.dealer_protocol.streams import SeedStream
from tests._dealer_helpers import RING, arith_open, check_additive, shares_of, xor_open


class FakeSession:
    """A party's session whose rank-0 corrections come from an in-memory dealer."""

    def __init__(self, rank: int, seed: bytes, dealer: list[SeedStream]) -> None:
        self.rank = rank
        self.stream = SeedStream(seed)
        self._dealer = dealer
        self.requests: list[Request] = []

    def correction(self, request: Request) -> torch.Tensor:
        self.requests.append(request)
        return dealer_math.correction(self._dealer, request)


class Federation:
    """n simulated parties, each with its own provider and seed; the dealer holds copies."""

    def __init__(self, n: int) -> None:
        seeds = [secrets.token_bytes(32) for _ in range(n)]
        self.dealer = [SeedStream(s) for s in seeds]
        self.sessions = [FakeSession(i, s, self.dealer) for i, s in enumerate(seeds)]
        self.providers = [DealerProvider(s) for s in self.sessions]

    def call(self, method: str, *args: Any, **kwargs: Any) -> list[Any]:
        return [getattr(p, method)(*args, **kwargs) for p in self.providers]

    def in_step(self) -> bool:
        """Every party's stream consumed exactly what the dealer's copy of it did."""
        return all(
            s.stream.consumed == d.consumed for s, d in zip(self.sessions, self.dealer, strict=True)
        )


@pytest.fixture(params=[2, 3, 5])
def fed(request: pytest.FixtureRequest) -> Federation:
    return Federation(request.param)


def test_mul_and_matmul_triples(fed: Federation) -> None:
    check_additive(fed.call("generate_additive_triple", (4, 3), (3,), "mul"), torch.mul)
    check_additive(fed.call("generate_additive_triple", (3, 4), (4, 2), "matmul"), torch.matmul)
    check_additive(fed.call("generate_additive_triple", (5,), (5,), "mul"), torch.mul)
    assert fed.in_step()
    assert [r.kind for r in fed.sessions[0].requests] == ["additive"] * 3
    assert all(not s.requests for s in fed.sessions[1:])  # only rank 0 asks the dealer


def test_conv_triple_passes_op_arguments(fed: Federation) -> None:
    kwargs = {"padding": 1, "stride": 2}
    results = fed.call("generate_additive_triple", (2, 3, 9), (4, 3, 3), "conv1d", **kwargs)
    assert results[0][2].share.shape == (2, 4, 5)
    check_additive(results, torch.conv1d, **kwargs)


def test_square_pairs(fed: Federation) -> None:
    results = fed.call("square", (6, 7))
    r, r2 = arith_open(shares_of(results, 0)), arith_open(shares_of(results, 1))
    assert r2 == [v * v % RING for v in r]
    assert fed.in_step()


def test_binary_triples(fed: Federation) -> None:
    results = fed.call("generate_binary_triple", (3, 1), (3, 4))
    a, b, c = (xor_open(shares_of(results, i)) for i in range(3))
    assert c.shape == (3, 4)
    assert torch.equal(c, a & b)
    assert fed.in_step()


def test_wrap_counts(fed: Federation) -> None:
    results = fed.call("wrap_rng", (1000,))
    r_shares, theta = shares_of(results, 0), arith_open(shares_of(results, 1))
    count_wraps = import_crypten().common.util.count_wraps
    assert [v % RING for v in count_wraps(r_shares).tolist()] == theta
    # Independently: the shares' true integer sum is r + theta * 2^64.
    for i in range(1000):
        total = sum(int(s[i]) for s in r_shares)
        wrapped = (total + 2**63) % RING - 2**63
        assert (total - wrapped) // RING % RING == theta[i]
    assert any(t != 0 for t in theta)
    assert fed.in_step()


def test_b2a_bits(fed: Federation) -> None:
    results = fed.call("B2A_rng", (2000,))
    r_arith, r_bits = arith_open(shares_of(results, 0)), xor_open(shares_of(results, 1))
    assert r_bits.tolist() == r_arith
    assert set(r_arith) == {0, 1}
    assert fed.in_step()


def test_a_mixed_sequence_stays_in_step() -> None:
    fed = Federation(3)
    fed.call("B2A_rng", (10,))
    fed.call("wrap_rng", (4, 4))
    fed.call("generate_binary_triple", (8,), (8,))
    fed.call("square", ())
    check_additive(fed.call("generate_additive_triple", (2, 2), (2, 2), "matmul"), torch.matmul)
    assert fed.in_step()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nope", (2,)), "unknown kind"),
        (("additive", (2,), (2,), "div"), "unknown op"),
        (("additive", (2, 3), (4, 5), "matmul"), "matmul of sizes"),
        (("binary", (2,), (3,)), "binary and of sizes"),
        (("square", (2,), (2,)), "takes one size"),
        (("square", (2,), (), "mul"), "takes no op"),
        (("square", (50_000_001,)), "more than 50,000,000"),
        (("square", (10_000, 10_000)), "more than 50,000,000"),
        (("additive", (8_000, 1), (1, 8_000), "mul"), "the output"),
        (("additive", (2,), (2,), "mul", {"padding": 1}), "does not take"),
        (("additive", (1, 1, 5), (1, 1, 3), "conv1d", {"padding": "same"}), "integer"),
        (("additive", (1, 1, 5), (1, 1, 3), "conv1d", {"stride": True}), "integer"),
        (("additive", (1, 1, 5), (1, 1, 3), "conv1d", {"stride": [1, 2, 3, 4]}), "integer"),
    ],
)
def test_invalid_requests_are_refused(args: tuple[Any, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_request(*args)


def test_op_arguments_are_json_objects_only() -> None:
    assert kwargs_from_json('{"padding": [1, 2]}') == {"padding": [1, 2]}
    assert kwargs_from_json("") == {}
    for bad in ("[1]", "1", "not json", "{" * 2000):
        with pytest.raises(ValueError):
            kwargs_from_json(bad)


@pytest.mark.parametrize(
    ("op", "size0", "size1"),
    [
        ("mul", (4, 3), (3,)),
        ("mul", (2, 1, 5), (3, 1)),
        ("mul", (), (3,)),
        ("mul", (0, 3), (1, 3)),
        ("matmul", (3,), (3,)),
        ("matmul", (3,), (3, 2)),
        ("matmul", (4, 3), (3,)),
        ("matmul", (4, 3), (3, 2)),
        ("matmul", (5, 1, 4, 3), (2, 3, 2)),
        ("matmul", (3,), (2, 3, 4)),
        ("matmul", (2, 4, 3), (3,)),
        ("mul", (2, 3), (3, 2)),
        ("matmul", (4, 3), (2, 2)),
        ("matmul", (), (3,)),
        ("matmul", (2, 4, 3), (3, 3, 1)),
    ],
)
def test_output_sizes_match_torch(op: str, size0: tuple[int, ...], size1: tuple[int, ...]) -> None:
    # The party computes the size of c without computing c; torch on real tensors decides.
    try:
        expected = tuple(getattr(torch, op)(torch.zeros(size0), torch.zeros(size1)).shape)
    except RuntimeError:
        with pytest.raises(ValueError, match=f"{op} of sizes"):
            make_request("additive", size0, size1, op)
        return
    assert make_request("additive", size0, size1, op).out_size == expected


def test_install_selects_the_provider_and_uninstall_disarms_it() -> None:
    from smpc_ehr.backends.crypten import provider as provider_module
    from smpc_ehr.errors import TransportError

    crypten = import_crypten()
    before = crypten.cfg.mpc.provider
    fed = Federation(2)
    try:
        provider_module.install(fed.sessions[1])
        assert crypten.cfg.mpc.provider == "DEALER"
        chosen = crypten.mpc.get_default_provider()
        assert isinstance(chosen, DealerProvider)
        r, _ = chosen.square((3,))
        assert r.share.shape == (3,)
        assert fed.sessions[1].stream.consumed == 2 * 3 * 8  # r and its r² share
        provider_module.uninstall()
        with pytest.raises(TransportError, match="no dealer session is installed"):
            chosen.square((3,))
    finally:
        provider_module.uninstall()
        crypten.cfg.mpc.provider = before
