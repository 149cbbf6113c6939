"""Per-job mailboxes: ordering, chunks, duplicates, aborts, unknown and finished jobs."""

from __future__ import annotations

import pytest

from smpc_ehr.errors import JobAborted, TransportError
from smpc_ehr.transport.mailbox import JobMailbox, MailboxRegistry


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
