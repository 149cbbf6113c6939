"""CrypTen's `Communicator` interface carried by a job's mutual-TLS mesh channel.

CrypTen's MPC code calls the communicator synchronously from the thread that runs
the computation. Every call here turns into tagged messages on the job's
`JobChannel` and blocking reads of the job's mailbox, each with the round deadline;
a job failure (peer abort, broken link, cancel, deadline) makes every pending and
later read raise at once.

Tags: all parties make the same sequence of collective calls, so a per-job counter
names each collective (`ct/<n>/...`); point-to-point messages are numbered per
(sender, receiver) pair. Tensors travel as raw little-endian arrays (NDArray), small
objects (sizes, flags) as JSON: never pickle.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from smpc_ehr.backends.crypten.compat import import_crypten
from smpc_ehr.backends.crypten.provider import resolve_pending
from smpc_ehr.errors import TransportError
from smpc_ehr.transport.arrays import decode_array, encode_array
from smpc_ehr.transport.mesh import JobChannel
from smpc_ehr.wire import common_pb2

import_crypten()

import torch  # noqa: E402  (after compat set up the import path crypten needs)
from crypten.communicator import Communicator  # noqa: E402
from torch.distributed import ReduceOp  # noqa: E402


def encode_tensor(tensor: torch.Tensor) -> bytes:
    """A tensor as NDArray bytes (raw little-endian numbers with dtype and shape)."""
    return bytes(encode_array(tensor.detach().cpu().contiguous().numpy()).SerializeToString())


def decode_tensor(payload: bytes) -> torch.Tensor:
    """The tensor an `encode_tensor` payload holds; TransportError if malformed."""
    message = common_pb2.NDArray()
    try:
        message.ParseFromString(payload)
    except Exception as exc:  # protobuf raises its own DecodeError
        raise TransportError(f"malformed tensor message: {exc}") from exc
    return torch.from_numpy(decode_array(message))


def encode_object(obj: Any) -> bytes:
    """Plain data (numbers, strings, lists, dicts, torch.Size) as JSON bytes."""

    def plain(value: Any) -> Any:
        if isinstance(value, torch.Size):
            return {"__size__": list(value)}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {str(k): plain(v) for k, v in value.items()}
        if value is None or isinstance(value, bool | int | float | str):
            return value
        if isinstance(value, np.integer | np.floating):
            return value.item()
        raise TypeError(f"cannot send an object of type {type(value).__name__} (plain data only)")

    return json.dumps(plain(obj)).encode()


def decode_object(payload: bytes) -> Any:
    """The object an `encode_object` payload holds."""

    def revive(value: Any) -> Any:
        if isinstance(value, dict):
            if set(value) == {"__size__"}:
                return torch.Size(value["__size__"])
            return {k: revive(v) for k, v in value.items()}
        if isinstance(value, list):
            return [revive(v) for v in value]
        return value

    try:
        return revive(json.loads(payload))
    except ValueError as exc:
        raise TransportError(f"malformed object message: {exc}") from exc


class _Done:
    """What isend returns: the message is already queued."""

    def is_completed(self) -> bool:
        return True

    def wait(self) -> None:
        return None


class _PendingRecv:
    """What irecv returns: `wait()` fills the caller's tensor in place."""

    def __init__(self, read: Callable[[], torch.Tensor], target: torch.Tensor) -> None:
        self._read = read
        self._target = target
        self._done = False

    def is_completed(self) -> bool:
        return self._done

    def wait(self) -> None:
        if not self._done:
            self._target.copy_(self._read())
            self._done = True


class MeshCommunicator(Communicator):
    """One job's CrypTen communicator: rank = position in the job's party list."""

    BYTES_PER_ELEMENT = 8  # CrypTen's statistics count int64 ring elements

    def __init__(self, channel: JobChannel, round_seconds: float) -> None:
        self._channel = channel
        self._round_seconds = round_seconds
        self.rank = channel.my_index
        self.world_size = len(channel.parties)
        self._collective = 0
        self._sent = [0] * self.world_size
        self._received = [0] * self.world_size
        self._name = channel.me
        self.reset_communication_stats()

    # -- plumbing -------------------------------------------------------------------

    def _put(self, dst: int, tag: str, payload: bytes, elements: int) -> None:
        self._channel.send(self._channel.parties[dst], tag, payload)
        self._log_communication(elements)

    def _take(self, src: int, tag: str) -> bytes:
        slot = self._channel.expect(self._channel.parties[src], tag)
        started = time.perf_counter()
        try:
            payload = slot.result(timeout=self._round_seconds)
        except TimeoutError:
            failure = TransportError(
                f"no message from {self._channel.parties[src]} within the round deadline "
                f"of {self._round_seconds:g} s (CrypTen {tag})"
            )
            self._channel.fail(failure)
            raise self._channel.failure or failure from None
        self._log_communication_time(time.perf_counter() - started)
        resolve_pending()  # rank 0's dealer answers, in flight during this exchange
        return payload

    def _next_collective(self) -> str:
        self._collective += 1
        return f"ct/{self._collective}"

    def _send_tensor(self, dst: int, tag: str, tensor: torch.Tensor) -> None:
        self._put(dst, tag, encode_tensor(tensor), tensor.nelement())

    def _take_tensor(self, src: int, tag: str) -> torch.Tensor:
        return decode_tensor(self._take(src, tag))

    def _others(self) -> list[int]:
        return [r for r in range(self.world_size) if r != self.rank]

    # -- point to point -------------------------------------------------------------

    def _p2p_tag(self, src: int, dst: int, number: int) -> str:
        return f"ct/p2p/{src}>{dst}/{number}"

    def send(self, tensor: torch.Tensor, dst: int) -> None:
        number = self._sent[dst]
        self._sent[dst] += 1
        self._send_tensor(dst, self._p2p_tag(self.rank, dst, number), tensor)

    def _recv_tag(self, src: int | None) -> tuple[int, str]:
        if src is None:
            raise TransportError("CrypTen receive without a named source is not supported")
        number = self._received[src]
        self._received[src] += 1
        return src, self._p2p_tag(src, self.rank, number)

    def recv(self, tensor: torch.Tensor, src: int | None = None) -> torch.Tensor:
        source, tag = self._recv_tag(src)
        return self._take_tensor(source, tag).to(tensor.dtype).reshape(tensor.shape)

    def isend(self, tensor: torch.Tensor, dst: int) -> _Done:
        self.send(tensor, dst)
        return _Done()

    def irecv(self, tensor: torch.Tensor, src: int | None = None) -> _PendingRecv:
        source, tag = self._recv_tag(src)
        return _PendingRecv(lambda: self._take_tensor(source, tag), tensor)

    # -- collectives ----------------------------------------------------------------

    def scatter(
        self, scatter_list: list[torch.Tensor], src: int, size: Any = None, device: Any = None
    ) -> torch.Tensor:
        tag = self._next_collective() + "/scatter"
        if self.rank == src:
            for dst in self._others():
                self._send_tensor(dst, tag, scatter_list[dst])
            return scatter_list[self.rank]
        return self._take_tensor(src, tag)

    def _send_to_others(self, tag: str, tensor: torch.Tensor) -> None:
        for dst in self._others():
            self._send_tensor(dst, tag, tensor)

    def _collect(self, tensor: torch.Tensor, tag: str) -> list[torch.Tensor]:
        """This party's `tensor` and every other party's message `tag`, in rank order."""
        return [
            tensor if r == self.rank else self._take_tensor(r, tag) for r in range(self.world_size)
        ]

    def _gather_from_all(self, tensor: torch.Tensor, tag: str) -> list[torch.Tensor]:
        """Send `tensor` to every other party and collect theirs, in rank order."""
        self._send_to_others(tag, tensor)
        return self._collect(tensor, tag)

    def reduce(self, input: Any, dst: int, op: Any = ReduceOp.SUM, batched: bool = False) -> Any:
        combine = _combiner(op)
        tensors = list(input) if batched else [input]
        results = []
        for tensor in tensors:
            tag = self._next_collective() + "/reduce"
            if self.rank == dst:
                results.append(combine(self._collect(tensor, tag)))
            else:
                self._send_tensor(dst, tag, tensor)
        if self.rank != dst:
            return None
        return results if batched else results[0]

    def all_reduce(self, input: Any, op: Any = ReduceOp.SUM, batched: bool = False) -> Any:
        combine = _combiner(op)
        tensors = list(input) if batched else [input]
        tags = [self._next_collective() + "/all_reduce" for _ in tensors]
        for tensor, tag in zip(tensors, tags, strict=True):  # send all before reading any
            self._send_to_others(tag, tensor)
        results = [combine(self._collect(t, tag)) for t, tag in zip(tensors, tags, strict=True)]
        return results if batched else results[0]

    def gather(self, tensor: torch.Tensor, dst: int) -> list[torch.Tensor | None]:
        tag = self._next_collective() + "/gather"
        if self.rank == dst:
            return list(self._collect(tensor, tag))
        self._send_tensor(dst, tag, tensor)
        return [None]

    def all_gather(self, tensor: torch.Tensor) -> list[torch.Tensor]:
        return self._gather_from_all(tensor, self._next_collective() + "/all_gather")

    def broadcast(self, input: Any, src: int, group: Any = None, batched: bool = False) -> Any:
        tensors = list(input) if batched else [input]
        tags = [self._next_collective() + "/broadcast" for _ in tensors]
        for tensor, tag in zip(tensors, tags, strict=True):
            if self.rank == src:
                self._send_to_others(tag, tensor)
            else:  # in place, like torch.distributed.broadcast
                tensor.data.copy_(self._take_tensor(src, tag).reshape(tensor.shape))
        return input

    def barrier(self) -> None:
        self._gather_from_all(
            torch.zeros(1, dtype=torch.int64), self._next_collective() + "/barrier"
        )

    def send_obj(self, obj: Any, dst: int, group: Any = None) -> None:
        number = self._sent[dst]
        self._sent[dst] += 1
        self._put(dst, self._p2p_tag(self.rank, dst, number) + "/obj", encode_object(obj), 1)

    def recv_obj(self, src: int, group: Any = None) -> Any:
        source, tag = self._recv_tag(src)
        return decode_object(self._take(source, tag + "/obj"))

    def broadcast_obj(self, obj: Any, src: int, group: Any = None) -> Any:
        tag = self._next_collective() + "/broadcast_obj"
        if self.rank == src:
            payload = encode_object(obj)
            for dst in self._others():
                self._put(dst, tag, payload, 1)
            return obj
        return decode_object(self._take(src, tag))

    # -- identity -------------------------------------------------------------------

    def get_world_size(self) -> int:
        return self.world_size

    def get_rank(self) -> int:
        return self.rank

    def set_name(self, name: str) -> None:
        self._name = name

    def get_name(self) -> str:
        return self._name


def _combiner(op: Any) -> Callable[[list[torch.Tensor]], torch.Tensor]:
    """How reduce/all_reduce combine the parties' tensors: arithmetic shares add up
    (int64 wraps around, as Z_2^64 needs); binary shares combine by xor."""
    step: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    if op == ReduceOp.SUM:
        step = torch.Tensor.add_
    elif op == ReduceOp.BXOR:
        step = torch.Tensor.bitwise_xor_
    else:
        raise TransportError(f"reduce operation {op} is not supported (sum and xor only)")

    def combine(tensors: list[torch.Tensor]) -> torch.Tensor:
        total = tensors[0].clone()
        for tensor in tensors[1:]:
            step(total, tensor.reshape(total.shape))
        return total

    return combine
