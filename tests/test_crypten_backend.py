"""CrypTen backend pieces that need no federation: wire encoding and refusals."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from smpc_ehr.backends import INSECURE_TFP_ENV, check_backend
from smpc_ehr.backends.crypten import communicator as comm
from smpc_ehr.backends.crypten.backend import run_job
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
