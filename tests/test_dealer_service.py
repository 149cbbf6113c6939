"""The dealer over real mutual-TLS gRPC, in this process on 127.0.0.1 port 0.

Parties open DealerSessions (real seeds, real Join), drive the real DealerProvider,
and the triples they get reconstruct correctly; every refusal is checked with its
status code and message.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import torch

from smpc_ehr.backends.crypten import provider as provider_module
from smpc_ehr.backends.crypten.provider import DealerProvider, DealerSession
from smpc_ehr.config.dealer import (
    MAX_JOBS_PER_PARTY,
    DealerConfig,
    load_dealer_config,
    write_dealer_config,
)
from smpc_ehr.config.roster import Member, Roster, write_roster
from smpc_ehr.dealer.server import running
from smpc_ehr.dealer.sessions import MAX_OPEN_JOBS, Dealer
from smpc_ehr.dealer_protocol.correlations import make_request
from smpc_ehr.dealer_protocol.messages import CHUNK_ELEMENTS
from smpc_ehr.errors import Refusal, TransportError
from smpc_ehr.local.federation import free_port
from smpc_ehr.pki.certs import init_federation_pki
from smpc_ehr.transport.tls import TlsIdentity
from smpc_ehr.wire import dealer_pb2, dealer_pb2_grpc, party_pb2
from tests._dealer_helpers import arith_open, check_additive, shares_of, xor_open

PARTIES = ("hospital-1", "hospital-2", "hospital-3")


class DealerThread:
    """The dealer's grpc.aio server in its own event loop thread (as in its process)."""

    def __init__(self, config: DealerConfig) -> None:
        self._config = config
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self.port = 0
        self.dealer: Dealer | None = None
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._main(),))
        self._thread.start()
        assert self._ready.wait(10), "dealer did not start"

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        async with running(self._config) as (_server, port, dealer):
            self.port, self.dealer = port, dealer
            self._ready.set()
            await self._stop.wait()

    def close(self) -> None:
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        self._loop.close()


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dealer-pki")

    def member(ident: str, role: str) -> Member:
        return Member(ident, role, ident, None if role == "analyst" else "127.0.0.1:1")

    roster = Roster(
        federation="dealer-test",
        ca_cert=out / "ca.pem",
        coordinator=member("coordinator", "coordinator"),
        dealer=member("dealer", "dealer"),
        parties=tuple(member(p, "party") for p in PARTIES),
        analysts=(member("analyst", "analyst"),),
        source=out / "roster.toml",
    )
    write_roster(roster, roster.source)
    init_federation_pki(roster, out)
    write_dealer_config(
        out / "dealer.toml",
        id="dealer",
        roster=roster.source,
        key=out / "dealer.key",
        cert=out / "dealer.pem",
        listen="127.0.0.1:0",
    )
    return out


@pytest.fixture(scope="module")
def server(certs: Path) -> Iterator[DealerThread]:
    running_dealer = DealerThread(load_dealer_config(certs / "dealer.toml"))
    yield running_dealer
    running_dealer.close()


def tls(certs: Path, ident: str) -> TlsIdentity:
    return TlsIdentity.from_files(
        ident, certs / "ca.pem", certs / f"{ident}.pem", certs / f"{ident}.key"
    )


def address(server: DealerThread) -> str:
    return f"127.0.0.1:{server.port}"


def open_session(
    certs: Path,
    server: DealerThread,
    job: str,
    rank: int,
    parties: tuple[str, ...] = PARTIES,
    deadline: float = 30.0,
    rpc_seconds: float = 10.0,
    who: str | None = None,
) -> DealerSession:
    return DealerSession.open(
        tls(certs, who or parties[rank]),
        "dealer",
        address(server),
        job,
        list(parties),
        rank,
        deadline_seconds=deadline,
        rpc_seconds=rpc_seconds,
    )


def stub(certs: Path, server: DealerThread, ident: str) -> dealer_pb2_grpc.DealerStub:
    return dealer_pb2_grpc.DealerStub(tls(certs, ident).blocking_channel(address(server), "dealer"))


def new_job() -> str:
    return uuid.uuid4().hex


def correlated(
    job: str, sequence: int, kind: str = "square", size: int = 4
) -> dealer_pb2.CorrelatedRequest:
    return dealer_pb2.CorrelatedRequest(job_id=job, sequence=sequence, kind=kind, size0=[size])


def rpc_error(call: Callable[..., Any], request: Any) -> grpc.RpcError:
    """The error a call ends with (a streamed reply raises when it is read)."""
    with pytest.raises(grpc.RpcError) as err:
        reply = call(request, timeout=10)
        if isinstance(reply, Iterator):
            list(reply)
    return err.value


def joined_job(certs: Path, server: DealerThread) -> tuple[str, list[DealerSession]]:
    job = new_job()
    return job, [open_session(certs, server, job, rank) for rank in range(len(PARTIES))]


def test_triples_from_the_dealer_reconstruct(certs: Path, server: DealerThread) -> None:
    job, sessions = joined_job(certs, server)
    providers = [DealerProvider(s) for s in sessions]

    def call(method: str, *args: object) -> list[Any]:
        return [getattr(p, method)(*args) for p in providers]

    check_additive(call("generate_additive_triple", (3, 4), (4, 2), "matmul"), torch.matmul)
    # Larger than one reply message: the correction arrives in several chunks.
    big = (CHUNK_ELEMENTS + 1000,)
    results = call("generate_additive_triple", big, big, "mul")
    # Opened in int64 arithmetic, which wraps mod 2^64 (small triples are checked with ints).
    a, b, c = (torch.stack(shares_of(results, i)).sum(0) for i in range(3))
    assert torch.equal(c, a * b)
    results = call("generate_binary_triple", (5,), (5,))
    x, y, z = (xor_open(shares_of(results, i)) for i in range(3))
    assert torch.equal(z, x & y)
    results = call("square", (7,))
    r, r2 = (arith_open(shares_of(results, i)) for i in range(2))
    assert r2 == [v * v % 2**64 for v in r]
    results = call("B2A_rng", (50,))
    assert xor_open(shares_of(results, 1)).tolist() == arith_open(shares_of(results, 0))
    for session in sessions:
        session.close()
    assert server.dealer is not None and job not in server.dealer._jobs


def test_deferred_corrections_fill_rank_0s_shares_in_place(
    certs: Path, server: DealerThread
) -> None:
    """The installed provider's way: rank 0 gets a placeholder while its dealer round
    trip is in flight, a new request goes out without waiting for it (one stream,
    answered in order), and `resolve_pending` (the communicator's, after an exchange)
    fills those very tensors."""
    _, sessions = joined_job(certs, server)
    providers = [DealerProvider(s, defer=True) for s in sessions]
    try:
        first = [p.generate_additive_triple((3,), (3,), "mul") for p in providers]
        placeholder = first[0][2].share
        second = [p.square((4,)) for p in providers]  # sent with the triple in flight
        assert not placeholder.any() and not second[0][1].share.any()  # not here yet
        provider_module.resolve_pending()
        a, b, c = (arith_open(shares_of(first, i)) for i in range(3))
        assert first[0][2].share is placeholder
        assert c == [x * y % 2**64 for x, y in zip(a, b, strict=True)]
        r, r2 = (arith_open(shares_of(second, i)) for i in range(2))
        assert r2 == [v * v % 2**64 for v in r]
    finally:
        provider_module.uninstall()  # drops anything still pending
        for session in sessions:
            session.close()


def stream_error(
    certs: Path, server: DealerThread, ident: str, requests: list[dealer_pb2.CorrelatedRequest]
) -> tuple[list[int], grpc.RpcError]:
    """The request numbers a CorrelatedStream answered before it failed, and its error."""
    answered: list[int] = []
    with pytest.raises(grpc.RpcError) as err:
        for reply in stub(certs, server, ident).CorrelatedStream(iter(requests), timeout=10):
            answered.append(reply.sequence)
    return answered, err.value


def test_one_stream_answers_pipelined_requests_in_order(certs: Path, server: DealerThread) -> None:
    job, sessions = joined_job(certs, server)
    requests = [correlated(job, 0), correlated(job, 1, kind="wraps"), correlated(job, 2)]
    replies = list(stub(certs, server, "hospital-1").CorrelatedStream(iter(requests), timeout=10))
    assert [(r.sequence, list(r.shape), r.offset) for r in replies] == [
        (0, [4], 0),
        (1, [4], 0),
        (2, [4], 0),
    ]
    assert server.dealer is not None and server.dealer._jobs[job].sequence == 3
    # Refused mid-stream: what came before is answered, the gap ends the stream.
    answered, err = stream_error(
        certs, server, "hospital-1", [correlated(job, 3), correlated(job, 5), correlated(job, 6)]
    )
    assert answered == [3] and err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "expected request number 4, got 5" in err.details()
    for session in sessions:
        session.close()


def test_a_stream_is_rank_0s_for_one_job_and_one_at_a_time(
    certs: Path, server: DealerThread
) -> None:
    job, sessions = joined_job(certs, server)
    _, err = stream_error(certs, server, "hospital-2", [correlated(job, 0)])
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "only rank 0 (hospital-1)" in err.details()
    sessions[0].correction(make_request("square", (2,)))  # the session's stream stays open
    _, err = stream_error(certs, server, "hospital-1", [correlated(job, 1)])
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "already has a request stream open" in err.details()
    assert len(sessions[0].correction(make_request("square", (2,)))) == 2
    other, others = joined_job(certs, server)
    answered, err = stream_error(
        certs, server, "hospital-1", [correlated(other, 0), correlated(job, 2)]
    )
    assert answered == [0] and err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "carries one job's requests" in err.details()
    for session in sessions + others:
        session.close()


def test_each_answer_on_the_stream_keeps_its_deadline(certs: Path, server: DealerThread) -> None:
    """A dealer that does not answer within a call's time (here: it waits for joins
    until the job's 30 s deadline) is reported after rpc_seconds, naming the request."""
    session = open_session(certs, server, new_job(), rank=0, rpc_seconds=0.5)
    start = time.monotonic()
    with pytest.raises(TransportError, match=r"dealer \(dealer\) did not answer square request 0"):
        session.correction(make_request("square", (3,)))
    assert 0.4 < time.monotonic() - start < 5
    with pytest.raises(TransportError, match="did not answer square request 0"):  # stays failed
        session.correction(make_request("square", (3,)))
    session.close()


def test_only_rank_0_may_ask_for_corrections(certs: Path, server: DealerThread) -> None:
    job, sessions = joined_job(certs, server)
    err = rpc_error(stub(certs, server, "hospital-2").Correlated, correlated(job, 0))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "only rank 0 (hospital-1)" in err.details()
    for session in sessions:
        session.close()


def test_caller_must_be_the_party_at_its_rank(certs: Path, server: DealerThread) -> None:
    with pytest.raises(TransportError, match=r"refused Join: .*cannot join job \S+ as rank 0"):
        open_session(certs, server, new_job(), rank=0, who="hospital-2")
    join = dealer_pb2.JoinRequest(
        job_id=new_job(), parties=list(PARTIES), rank=0, seed=bytes(32), deadline_seconds=5
    )
    err = rpc_error(stub(certs, server, "analyst").Join, join)
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "analyst is not a party" in err.details()


def test_sequence_gaps_and_replays_are_refused(certs: Path, server: DealerThread) -> None:
    job, sessions = joined_job(certs, server)
    rank0 = stub(certs, server, "hospital-1")
    err = rpc_error(rank0.Correlated, correlated(job, 1))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "expected request number 0, got 1" in err.details()
    assert len(list(rank0.Correlated(correlated(job, 0), timeout=10))) == 1
    err = rpc_error(rank0.Correlated, correlated(job, 0))
    assert "expected request number 1, got 0" in err.details()
    for session in sessions:
        session.close()


def test_unknown_job_is_refused(certs: Path, server: DealerThread) -> None:
    err = rpc_error(stub(certs, server, "hospital-1").Correlated, correlated("no-such-job", 0))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert "unknown job no-such-job" in err.details()


def test_missing_join_fails_at_the_deadline_naming_who(certs: Path, server: DealerThread) -> None:
    session = open_session(certs, server, new_job(), rank=0, deadline=1.0)
    start = time.monotonic()
    with pytest.raises(TransportError) as err:
        session.correction(make_request("square", (3,)))
    assert 0.8 < time.monotonic() - start < 5
    assert "hospital-2, hospital-3 did not join the dealer" in str(err.value)
    session.close()


def test_bad_requests_are_invalid_arguments(certs: Path, server: DealerThread) -> None:
    job, sessions = joined_job(certs, server)
    rank0 = stub(certs, server, "hospital-1")
    err = rpc_error(rank0.Correlated, correlated(job, 0, kind="cube"))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "unknown kind 'cube'" in err.details()
    err = rpc_error(rank0.Correlated, correlated(job, 0, size=60_000_000))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "more than 50,000,000 elements" in err.details()
    pickled = dealer_pb2.CorrelatedRequest(
        job_id=job, kind="additive", size0=[2], size1=[2], op="mul", kwargs_json="\x80\x04K."
    )
    assert rpc_error(rank0.Correlated, pickled).code() == grpc.StatusCode.INVALID_ARGUMENT
    for session in sessions:
        session.close()


def test_joins_must_agree_and_not_repeat(certs: Path, server: DealerThread) -> None:
    job = new_job()
    first = open_session(certs, server, job, rank=0)
    with pytest.raises(TransportError, match="was opened with"):
        open_session(certs, server, job, rank=1, parties=("hospital-1", "hospital-2"))
    with pytest.raises(TransportError, match="already joined"):
        open_session(certs, server, job, rank=0)
    with pytest.raises(TransportError, match="at least 2 parties"):
        open_session(certs, server, new_job(), rank=0, parties=("hospital-1",))
    with pytest.raises(TransportError, match="lists a party twice"):
        open_session(certs, server, new_job(), rank=0, parties=("hospital-1", "hospital-1"))
    with pytest.raises(TransportError, match="at most 3600"):
        open_session(certs, server, new_job(), rank=0, deadline=7200)
    first.close()


def test_seeds_are_forgotten_after_every_party_leaves(certs: Path, server: DealerThread) -> None:
    job, sessions = joined_job(certs, server)
    assert server.dealer is not None and job in server.dealer._jobs
    for session in sessions:
        session.close()
    assert job not in server.dealer._jobs
    err = rpc_error(stub(certs, server, "hospital-1").Correlated, correlated(job, 0))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(TransportError, match="already ended"):
        open_session(certs, server, job, rank=0)


def test_a_party_leaving_stops_the_job(certs: Path, server: DealerThread) -> None:
    job, sessions = joined_job(certs, server)
    sessions[2].close()
    err = rpc_error(stub(certs, server, "hospital-1").Correlated, correlated(job, 0))
    assert "hospital-3 has left the job" in err.details()
    for session in sessions:
        session.close()


def test_client_without_certificate_is_refused(certs: Path, server: DealerThread) -> None:
    creds = grpc.ssl_channel_credentials(root_certificates=(certs / "ca.pem").read_bytes())
    options = [("grpc.ssl_target_name_override", "dealer")]
    with grpc.secure_channel(address(server), creds, options=options) as channel:
        err = rpc_error(dealer_pb2_grpc.DealerStub(channel).Health, party_pb2.HealthRequest())
    assert err.code() == grpc.StatusCode.UNAVAILABLE


def test_health_answers_roster_members(certs: Path, server: DealerThread) -> None:
    reply = stub(certs, server, "analyst").Health(party_pb2.HealthRequest(), timeout=10)
    assert (reply.identity, reply.role) == ("dealer", "dealer")


def test_session_fails_cleanly_when_the_dealer_is_down(certs: Path) -> None:
    start = time.monotonic()
    with pytest.raises(
        TransportError, match=r"the dealer \(dealer\) is unreachable at 127\.0\.0\.1"
    ):
        DealerSession.open(
            tls(certs, "hospital-1"),
            "dealer",
            f"127.0.0.1:{free_port()}",
            new_job(),
            list(PARTIES),
            0,
            deadline_seconds=30,
            rpc_seconds=2.0,
        )
    assert time.monotonic() - start < 3.0


def test_seeds_are_forgotten_at_the_deadline(certs: Path) -> None:
    now = [100.0]
    dealer = Dealer(load_dealer_config(certs / "dealer.toml").roster, clock=lambda: now[0])
    job = new_job()
    dealer.join("hospital-1", job, PARTIES, 0, bytes(32), deadline_seconds=5)
    now[0] += 4.9
    dealer.sweep()
    assert dealer.open_jobs == 1
    now[0] += 0.2
    dealer.sweep()
    assert dealer.open_jobs == 0
    assert dealer.leave("hospital-1", job)  # nothing left to forget
    with pytest.raises(KeyError, match="unknown job"):
        asyncio.run(dealer.correlated("hospital-1", job, 0, make_request("square", (1,))))


def test_repeated_joins_by_one_party_do_not_lock_out_other_jobs(certs: Path) -> None:
    """A party joining MAX_OPEN_JOBS jobs it never runs once locked every CrypTen job out
    until their deadlines passed; now it holds at most max_jobs_per_party of them and a
    real job joins and gets its triples at once."""
    fresh = DealerThread(load_dealer_config(certs / "dealer.toml"))
    try:
        spam = stub(certs, fresh, "hospital-1")
        for _ in range(MAX_OPEN_JOBS):
            join = dealer_pb2.JoinRequest(
                job_id=new_job(),
                parties=list(PARTIES),
                rank=0,
                seed=bytes(32),
                deadline_seconds=3600,
            )
            spam.Join(join, timeout=10)
        assert fresh.dealer is not None and fresh.dealer.open_jobs == MAX_JOBS_PER_PARTY
        start = time.monotonic()
        _, sessions = joined_job(certs, fresh)
        providers = [DealerProvider(s) for s in sessions]
        results = [p.square((5,)) for p in providers]
        r, r2 = (arith_open(shares_of(results, i)) for i in range(2))
        assert r2 == [v * v % 2**64 for v in r]
        assert time.monotonic() - start < 10
        for session in sessions:
            session.close()
    finally:
        fresh.close()


def test_a_party_holds_at_most_its_limit_of_jobs_and_the_oldest_ends(certs: Path) -> None:
    dealer = Dealer(load_dealer_config(certs / "dealer.toml").roster, max_jobs_per_party=2)
    old, kept, newer, other = (new_job() for _ in range(4))

    async def main() -> None:
        dealer.join("hospital-1", old, PARTIES, 0, bytes(32), deadline_seconds=60)
        waiting = asyncio.ensure_future(
            dealer.correlated("hospital-1", old, 0, make_request("square", (1,)))
        )
        await asyncio.sleep(0)
        dealer.join("hospital-1", kept, PARTIES, 0, bytes(32), deadline_seconds=60)
        dealer.join("hospital-2", other, PARTIES, 1, bytes(32), deadline_seconds=60)
        dealer.join("hospital-1", newer, PARTIES, 0, bytes(32), deadline_seconds=60)
        # The oldest job of hospital-1 ended; its waiting request is refused at once.
        with pytest.raises(Refusal, match=r"hospital-1 joined newer jobs \(it holds at most 2"):
            await asyncio.wait_for(waiting, 1)
        assert dealer.open_jobs == 3  # kept, newer, and hospital-2's job
        with pytest.raises(Refusal, match="already ended"):
            dealer.join("hospital-2", old, PARTIES, 1, bytes(32), deadline_seconds=60)
        dealer.leave("hospital-1", kept)  # leaving lets a job go from the count
        dealer.join("hospital-1", other, PARTIES, 0, bytes(32), deadline_seconds=60)
        assert dealer.open_jobs == 3

    asyncio.run(main())
