"""CrypTen's tuple provider backed by the federation's dealer (a TTP over mutual TLS).

Each party opens a `DealerSession` per job: it makes a fresh 32-byte seed, gives it
to the dealer (Join) and draws all its shares of triples, square pairs, wrap counts
and random bits from a `SeedStream` on that seed. Rank 0 does not draw its output
shares; it asks the dealer for its correction term instead: numbered requests on one
stream per job, each sent when CrypTen asks, without waiting for earlier answers, and
awaited only after the parties' next exchange (`resolve_pending`), so that the round
trips to the dealer overlap it (before, each request was its own RPC, one in flight:
289 per logistic regression). No party ever sends the dealer data or an opened
value: only its seed and, for rank 0, the shapes of the computation.

`install(session)` selects this provider in CrypTen (`cfg.mpc.provider = "DEALER"`)
for the job; CrypTen calls providers synchronously from the computation thread, so
the session's calls (`transport.dealer_client`) block, each with its own deadline.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from smpc_ehr.backends.crypten.compat import import_crypten, register_provider
from smpc_ehr.dealer_protocol.correlations import Request, make_request, party_shares
from smpc_ehr.dealer_protocol.messages import CorrectionAssembly, request_to_wire
from smpc_ehr.dealer_protocol.streams import SEED_BYTES, SeedStream
from smpc_ehr.errors import TransportError
from smpc_ehr.transport.dealer_client import DealerClient, RequestStream
from smpc_ehr.transport.tls import TlsIdentity
from smpc_ehr.wire import dealer_pb2

PROVIDER_NAME = "DEALER"

_crypten = import_crypten()
_ArithmeticSharedTensor = _crypten.mpc.primitives.ArithmeticSharedTensor
_BinarySharedTensor = _crypten.mpc.primitives.BinarySharedTensor
_TupleProvider: Any = _crypten.mpc.provider.provider.TupleProvider


STREAM_GRACE_SECONDS = 1.0
"""How long the request stream outlives the job's deadline at the dealer (the answers
themselves are each due by their own time: `DealerClient.call_seconds`)."""


class ShareSource(Protocol):
    """What the provider needs from a session (a test can stand in for the dealer)."""

    @property
    def rank(self) -> int: ...

    @property
    def stream(self) -> SeedStream: ...

    def correction(self, request: Request) -> torch.Tensor: ...


@dataclass(frozen=True)
class _Asked:
    """A request on the stream whose answer rank 0 has not read yet."""

    sequence: int
    shape: tuple[int, ...]
    answer_by: float  # time.monotonic() instant
    what: str


class DealerSession:
    """One party's session with the dealer for one job: its seed stream and the client."""

    def __init__(
        self,
        *,
        job_id: str,
        parties: tuple[str, ...],
        rank: int,
        stream: SeedStream,
        client: DealerClient,
        deadline_seconds: float = 3600.0,
    ) -> None:
        self.job_id = job_id
        self.parties = parties
        self._rank = rank
        self._stream = stream
        self._client = client
        self._ends = time.monotonic() + deadline_seconds
        self._requests: RequestStream | None = None
        self._asked: deque[_Asked] = deque()
        self._answers: dict[int, torch.Tensor] = {}
        self._sequence = 0
        self._closed = False

    @classmethod
    def open(
        cls,
        tls: TlsIdentity,
        dealer_id: str,
        dealer_address: str,
        job_id: str,
        parties: Sequence[str],
        rank: int,
        deadline_seconds: float,
        rpc_seconds: float,
        answer_by: float | None = None,
    ) -> DealerSession:
        """Make a fresh seed, hand it to the dealer (Join) and return the session.

        Each dealer call may take `rpc_seconds`, and must end by `answer_by` (a
        `time.monotonic()` instant) if given: a job sets it before its own deadline, so
        that a silent dealer is reported as such before the job runs out of time.

        A fresh seed per job is what makes AES-CTR with a fixed nonce safe, and means
        a dealer that is compromised later learns nothing about earlier jobs.
        """
        seed = secrets.token_bytes(SEED_BYTES)
        join = dealer_pb2.JoinRequest(
            job_id=job_id,
            parties=list(parties),
            rank=rank,
            seed=seed,
            deadline_seconds=deadline_seconds,
        )
        client = DealerClient.join(tls, dealer_id, dealer_address, join, rpc_seconds, answer_by)
        return cls(
            job_id=job_id,
            parties=tuple(parties),
            rank=rank,
            stream=SeedStream(seed),
            client=client,
            deadline_seconds=deadline_seconds,
        )

    @property
    def rank(self) -> int:
        return self._rank

    @property
    def stream(self) -> SeedStream:
        return self._stream

    def correction(self, request: Request) -> torch.Tensor:
        """Rank 0's output share of the job's next request, from the dealer."""
        return self.start_correction(request)()

    def start_correction(self, request: Request) -> Callable[[], torch.Tensor]:
        """Send the job's next request to the dealer now, on the job's request stream;
        the returned function waits for rank 0's output share (so the round trip can
        overlap the parties' exchange). Each answer must come within a dealer call's
        time from its sending (`DealerClient.call_seconds`)."""
        if self._rank != 0:
            raise RuntimeError("only rank 0 asks the dealer for corrections")
        if self._closed:
            raise TransportError(f"the dealer session of job {self.job_id} is closed")
        if self._requests is None:
            # A little past the job's end: at its deadline the dealer refuses what is
            # still open saying why (who did not join); the stream must not time out
            # on this side at the same instant and hide that reason.
            seconds = self._ends - time.monotonic() + STREAM_GRACE_SECONDS
            self._requests = self._client.open_stream(seconds)
        sequence = self._sequence
        self._sequence += 1
        what = f"{request.kind} request {sequence}"
        self._requests.send(request_to_wire(self.job_id, sequence, request), what)
        answer_by = time.monotonic() + self._client.call_seconds()
        self._asked.append(_Asked(sequence, request.out_size, answer_by, what))
        return lambda: self._answer(sequence)

    def _answer(self, sequence: int) -> torch.Tensor:
        """Request `sequence`'s correction, reading the stream's replies in order."""
        requests = self._requests
        assert requests is not None
        while sequence not in self._answers:
            if not self._asked:
                raise RuntimeError(f"request {sequence} was not asked or was read already")
            asked = self._asked.popleft()
            assembly = CorrectionAssembly(asked.shape, asked.sequence)
            try:
                while not assembly.complete:
                    remaining = asked.answer_by - time.monotonic()
                    assembly.add(requests.reply(remaining, asked.what))
            except TransportError as exc:
                raise requests.fail(exc) from None
            self._answers[asked.sequence] = assembly.result()
        return self._answers.pop(sequence)

    def close(self) -> None:
        """End the request stream, tell the dealer we are done (best effort) and close
        the channel. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._requests is not None:
            self._requests.close()
        self._client.leave(self.job_id)

    def __enter__(self) -> DealerSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------- the CrypTen provider

_lock = threading.Lock()
_current: ShareSource | None = None


def current_session() -> ShareSource:
    """The session `install` put in place; an error if no dealer job is running."""
    with _lock:
        session = _current
    if session is None:
        raise TransportError("no dealer session is installed: the CrypTen job has not started")
    return session


def _arith(share: torch.Tensor) -> Any:
    return _ArithmeticSharedTensor.from_shares(share, precision=0)


def _check_device(device: Any) -> None:
    if device is not None and torch.device(device).type != "cpu":
        raise ValueError(f"the dealer provider works on the CPU only, not {device}")


_pending: list[tuple[torch.Tensor, Callable[[], torch.Tensor]]] = []
"""Rank 0's output shares whose dealer round trip is in flight: (placeholder, wait)."""


def resolve_pending() -> None:
    """Fill every deferred output share with the dealer's answer (rank 0; no-op else).

    Called by the communicator after each message it receives; the requests before it
    may all be in flight at once (one stream, answered in order). Why this is safe: in
    CrypTen every use of a provider's output share (c of a triple, r^2, theta_r, rA)
    comes after the protocol's own exchange, in which rank 0 receives (beaver.py:
    reveal_batch, reveal, gather to rank 0); the placeholder is the very tensor CrypTen
    holds (`from_shares` keeps it), filled in place.
    """
    while _pending:
        placeholder, wait = _pending.pop(0)
        placeholder.copy_(wait())


class DealerProvider(_TupleProvider):
    """Mirrors CrypTen's TrustedThirdParty, with our streams and our dealer.

    With no `session`, it uses the one `install` set (that is how CrypTen uses it), and
    defers rank 0's dealer round trips (`resolve_pending`); tests pass a session per
    simulated party and get every share at once.
    """

    NAME = PROVIDER_NAME

    def __init__(self, session: ShareSource | None = None, defer: bool = False) -> None:
        super().__init__()
        self._session = session
        self._defer = defer

    def shares(
        self,
        kind: str,
        size0: Any,
        size1: Any = (),
        op: str = "",
        op_kwargs: Mapping[str, Any] | None = None,
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """This party's raw shares (inputs, output) of one request, as plain tensors."""
        session = self._session if self._session is not None else current_session()
        request = make_request(kind, size0, size1, op, op_kwargs)
        if not (self._defer and isinstance(session, DealerSession) and session.rank == 0):
            return party_shares(
                session.stream, request, session.rank, lambda: session.correction(request)
            )
        placeholder = torch.zeros(request.out_size, dtype=torch.int64)
        _pending.append((placeholder, session.start_correction(request)))
        return party_shares(session.stream, request, session.rank, lambda: placeholder)

    def generate_additive_triple(
        self, size0: Any, size1: Any, op: str, device: Any = None, *args: Any, **kwargs: Any
    ) -> tuple[Any, Any, Any]:
        """Shares of a, b and c = op(a, b) (Beaver triple for mul, matmul, conv...)."""
        _check_device(device)
        if args:
            raise TypeError(f"pass the arguments of {op} by name, not by position")
        (a, b), c = self.shares("additive", size0, size1, op, kwargs)
        return _arith(a), _arith(b), _arith(c)

    def square(self, size: Any, device: Any = None) -> tuple[Any, Any]:
        """Shares of r and r²."""
        _check_device(device)
        (r,), r2 = self.shares("square", size)
        return _arith(r), _arith(r2)

    def generate_binary_triple(self, size0: Any, size1: Any, device: Any = None) -> Any:
        """Xor-shares of a, b and c = a & b."""
        _check_device(device)
        (a, b), c = self.shares("binary", size0, size1)
        return tuple(_BinarySharedTensor.from_shares(t) for t in (a, b, c))

    def wrap_rng(self, size: Any, device: Any = None) -> tuple[Any, Any]:
        """Shares of r and of the number of times r's shares wrap around 2^64."""
        _check_device(device)
        (r,), theta = self.shares("wraps", size)
        return _arith(r), _arith(theta)

    def B2A_rng(self, size: Any, device: Any = None) -> tuple[Any, Any]:
        """A random bit, shared arithmetically (rA) and by xor (rB)."""
        _check_device(device)
        (r_bits,), r_arith = self.shares("B2A", size)
        return _arith(r_arith), _BinarySharedTensor.from_shares(r_bits)


_provider: DealerProvider | None = None


def install(session: ShareSource) -> None:
    """Use `session` for CrypTen's correlated randomness until `uninstall`.

    One CrypTen job per process at a time: a second install replaces the first.
    """
    global _current, _provider
    with _lock:
        if _provider is None:
            _provider = DealerProvider(defer=True)
            register_provider(PROVIDER_NAME, _provider)
        _current = session
        _pending.clear()
    _crypten.cfg.mpc.provider = PROVIDER_NAME


def uninstall() -> None:
    """Forget the session. The provider stays selected, so a stray CrypTen call fails
    loudly instead of falling back to CrypTen's insecure trusted-first-party provider."""
    global _current
    with _lock:
        _current = None
        _pending.clear()
