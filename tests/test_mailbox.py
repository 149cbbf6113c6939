"""Per-job mailboxes: ordering, chunks, duplicates, aborts, unknown and finished jobs,
and the bounds on what a peer can make a party hold."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest

from smpc_ehr.errors import JobAborted, TransportError
from smpc_ehr.transport import mailbox
from smpc_ehr.transport.mailbox import (
    CHUNK_BYTES,
    MAX_STREAMS_PER_SENDER,
    MESSAGE_OVERHEAD,
    JobMailbox,
    MailboxRegistry,
)
from smpc_ehr.transport.mesh import receive_stream
from smpc_ehr.wire import party_pb2


def test_message_delivered_before_or_after_it_is_expected() -> None:
    box = JobMailbox("j1", ["a", "b"])
    box.deliver("a", "t1", 0, 1, b"early")
    late = box.expect("b", "t1")
    assert not late.done()
    box.deliver("b", "t1", 0, 1, b"late")
    assert box.expect("a", "t1").result(0) == b"early"
    assert late.result(0) == b"late"


def test_same_tag_from_different_senders_is_kept_apart() -> None:
    box = JobMailbox("j1", ["a", "b"])
    box.deliver("b", "x", 0, 1, b"from b")
    box.deliver("a", "x", 0, 1, b"from a")
    assert box.expect("a", "x").result(0) == b"from a"
    assert box.expect("b", "x").result(0) == b"from b"


def test_chunks_reassemble_in_index_order_whatever_the_arrival_order() -> None:
    box = JobMailbox("j1", ["a"])
    slot = box.expect("a", "big")
    box.deliver("a", "big", 2, 3, b"C")
    box.deliver("a", "big", 0, 3, b"A")
    assert not slot.done()
    box.deliver("a", "big", 1, 3, b"B")
    assert slot.result(0) == b"ABC"


@pytest.mark.parametrize(
    "bad",
    [
        ("c", "t", 0, 1, b"x"),  # not a party of the job
        ("a", "t", 1, 1, b"x"),  # chunk index out of range
        ("a", "t", 0, 0, b"x"),  # zero chunks
    ],
)
def test_malformed_messages_are_rejected(bad) -> None:
    box = JobMailbox("j1", ["a", "b"])
    with pytest.raises(TransportError):
        box.deliver(*bad)


def test_duplicate_message_is_rejected_even_after_it_was_read() -> None:
    box = JobMailbox("j1", ["a"])
    box.deliver("a", "t", 0, 1, b"x")
    with pytest.raises(TransportError, match="duplicate"):
        box.deliver("a", "t", 0, 1, b"y")
    assert box.expect("a", "t").result(0) == b"x"
    with pytest.raises(TransportError, match="duplicate"):
        box.deliver("a", "t", 0, 1, b"z")
    with pytest.raises(TransportError, match="already read"):
        box.expect("a", "t")


def test_failure_reaches_pending_and_later_reads() -> None:
    box = JobMailbox("j1", ["a"])
    pending = box.expect("a", "t1")
    box.fail(JobAborted("b died"))
    with pytest.raises(JobAborted, match="b died"):
        pending.result(0)
    with pytest.raises(JobAborted, match="b died"):
        box.expect("a", "t2").result(0)
    box.fail(JobAborted("second reason"))  # the first reason is kept
    assert str(box.failure) == "b died"


def test_registry_rejects_unknown_and_finished_jobs_and_never_reuses_ids() -> None:
    registry = MailboxRegistry()
    box = registry.open("j1", ["a"])
    assert registry.lookup("j1") is box
    with pytest.raises(TransportError, match="unknown job"):
        registry.lookup("j0")
    waiting = box.expect("a", "t")
    registry.close("j1")
    with pytest.raises(JobAborted):
        waiting.result(0)
    with pytest.raises(TransportError, match="finished job"):
        registry.lookup("j1")
    with pytest.raises(TransportError, match="already used"):
        registry.open("j1", ["a"])


def test_a_huge_chunk_announcement_is_refused_without_allocating() -> None:
    """A peer announcing 10^8 chunks once grew a party by 763 MB: now the job fails at
    once naming the sender, and the mailbox holds nothing for it."""
    registry = MailboxRegistry()
    box = registry.open("j1", ["a", "b"])
    waiting = box.expect("b", "t")

    async def messages() -> AsyncIterator[party_pb2.ShareMessage]:
        yield party_pb2.ShareMessage(
            job_id="j1", tag="t", sender="a", chunk=0, chunks=100_000_000, payload=b"x"
        )

    start = time.monotonic()
    with pytest.raises(TransportError, match=r"a announced message 't' in 100000000 chunks"):
        asyncio.run(receive_stream(registry, "a", messages()))
    assert time.monotonic() - start < 1.0
    assert box._partial == {} and box.held == 0
    assert isinstance(box.failure, TransportError)
    with pytest.raises(TransportError, match="100000000 chunks"):
        waiting.result(0)


def test_an_oversized_chunk_is_refused() -> None:
    box = JobMailbox("j1", ["a"])
    with pytest.raises(TransportError, match=f"chunk of {CHUNK_BYTES + 1} bytes"):
        box.deliver("a", "t", 0, 2, bytes(CHUNK_BYTES + 1))
    assert box.failure is not None and box.held == 0


def test_unread_messages_are_bounded_per_job(monkeypatch: pytest.MonkeyPatch) -> None:
    """Many small messages nobody asks for (or partial chunks) fill the job's budget;
    the next one fails the job, and everything held is let go."""
    each = MESSAGE_OVERHEAD + 100 + 2  # a held message or chunk: overhead, payload, tag
    monkeypatch.setattr(mailbox, "JOB_BUFFER_BYTES", 20 * each)
    box = JobMailbox("j1", ["a", "b"])
    for i in range(10):
        box.deliver("a", f"t{i}", 0, 1, bytes(100))
        box.deliver("b", f"p{i}", 0, 3, bytes(100))  # first chunk of 3
    assert box.held == 20 * each
    with pytest.raises(TransportError, match="more than a job holds unread"):
        box.deliver("a", "one-more", 0, 1, b"")
    assert box.held == 0 and box._partial == {} and box._unread == {}
    with pytest.raises(TransportError, match="more than a job holds unread"):
        box.expect("a", "t0").result(0)


def test_reading_a_message_lets_its_bytes_go() -> None:
    box = JobMailbox("j1", ["a"])
    box.deliver("a", "big", 0, 2, b"A")
    assert box.held == 1 + len("big") + MESSAGE_OVERHEAD
    box.deliver("a", "big", 1, 2, b"B")
    assert box.held == 2 + len("big") + MESSAGE_OVERHEAD  # now one complete message, unread
    assert box.expect("a", "big").result(0) == b"AB"
    assert box.held == 0
    waiting = box.expect("a", "next")
    box.deliver("a", "next", 0, 1, b"N")  # straight to its reader: nothing held
    assert waiting.result(0) == b"N" and box.held == 0


def test_a_sender_may_hold_only_a_few_streams() -> None:
    registry = MailboxRegistry()
    with contextlib.ExitStack() as open_streams:
        for _ in range(MAX_STREAMS_PER_SENDER):
            open_streams.enter_context(registry.stream_from("a"))
        with pytest.raises(TransportError, match=r"a already has 4 open Exchange streams"):
            open_streams.enter_context(registry.stream_from("a"))
        open_streams.enter_context(registry.stream_from("b"))  # another sender is not bound
    with registry.stream_from("a"):  # closed streams are counted out
        pass


def test_a_huge_tag_is_refused_and_counted() -> None:
    """A tag is the peer's to choose: one of megabytes must not be held, logged or
    echoed (it used to cost nothing in the mailbox's byte count)."""
    box = JobMailbox("j1", ["a", "b"])
    with pytest.raises(TransportError, match="tag of 4194304 characters"):
        box.deliver("a", "t" * 4 * 1024 * 1024, 0, 1, b"")
    assert box.held == 0
