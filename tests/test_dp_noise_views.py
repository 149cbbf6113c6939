"""No party knows the total noise: every party's noise share enters the released count,
and no share reaches another party in the clear (fast tier, in-process federation).

A party's view, concretely: every message its peers deliver to it over the job's mesh
(recorded at the in-memory links: the bytes a real party would read off its mutual-TLS
streams), what it keeps in its state folder, and what it logs. On a real backend, the
inputs travel as shares (MPyC: Shamir shares; CrypTen: additive shares), and only
`reveal`ed values travel in the clear. The in-process reference is plaintext: its
inputs travel in the clear by design. So the federation here runs the reference with
`SharedInputs`, a meeting in which every call but `reveal` sends each peer a fresh
uniformly random 64-bit word per value (what one share of a real sharing looks like;
tests/test_share_randomness.py checks the real sharings are that) while the plaintext
the reference computes on is passed beside the mesh (an ideal functionality, never
seen by a party). What the test then checks is the DP code's part: the noise shares
enter the computation only as secret inputs of their owners, and nothing the program
opens, nothing else sent and nothing kept or logged carries another party's share,
their sum or the total noise.

The ablations show the check can fail: the shipped reference (inputs in the clear)
and a deliberately broken DP program that opens the parties' noise inputs are both
caught.

The shares are made distinctive by an offset of about 7 million added to each drawn
share (a drawn share of sd ~320 can be 0, or a number a log line holds by chance), and
are searched as the little-endian 64-bit integers (and floats) the transport
carries: a chance match in n bytes of random words has probability ~ n 2^-64.
"""

from __future__ import annotations

import logging
import re
import secrets
import sqlite3
import threading
from collections import defaultdict
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import smpc_ehr.analyses.common.noise as noise
import smpc_ehr.testing.backend as reference_backend
from smpc_ehr.analyses.base import NamedProgram, NamedSecrets, Params
from smpc_ehr.analyses.statistics.count.analysis import CountAnalysis
from smpc_ehr.policy.ledger import LEDGER_FILE
from smpc_ehr.securemath.constants import COUNT_INPUT_BITS
from smpc_ehr.securemath.ops import SecureOps
from smpc_ehr.testing import memory
from smpc_ehr.testing.federation import InProcessFederation
from smpc_ehr.testing.reference import ChannelMeeting, _decode, _encode
from tests._truth import truth_counts
from tests.federations import COUNT_TEMPLATE

PARAMS = {"codes": "E11", "epsilon": "0.01"}
"""A true count of ~3300 with noise sd ~555 (plus the offsets): never suppressed."""
DISTINCT_OFFSET = 7_340_000
"""Added to each party's drawn share (and 1000 x its index) so that it is distinctive."""

_BOARD: dict[tuple[str, int, int], np.ndarray] = {}
"""The ideal functionality's inputs: (job, call, party) -> the party's plaintext part."""
_HERE = threading.local()
"""The party (index) whose secure program runs on this thread."""


class SharedInputs(ChannelMeeting):
    """The reference's meeting with a real backend's traffic: a peer receives a random
    64-bit word per value of every input (a share), and only `reveal`ed values in the
    clear; the plaintext parts go through `_BOARD`, beside the mesh."""

    def __init__(self, channel: Any, round_seconds: float) -> None:
        super().__init__(channel, round_seconds)
        _HERE.party = channel.my_index

    def exchange(self, party: int, call: object, part: np.ndarray) -> list[np.ndarray]:
        index, self._calls = self._calls, self._calls + 1
        channel, tag = self._channel, f"reference/{index}"
        public = isinstance(call, tuple) and call[0] == "reveal"
        part = np.asarray(part)
        _BOARD[(channel.job_id, index, party)] = part
        for peer in channel.parties:
            if peer != channel.me:
                share = np.frombuffer(secrets.token_bytes(8 * part.size), dtype=np.uint64)
                shown = part if public else share.reshape(part.shape)
                channel.send(peer, tag, _encode(repr(call), shown))
        parts = []
        for other, peer in enumerate(channel.parties):
            if other != party:  # the peer posted its part before sending
                described, _ = _decode(channel.expect(peer, tag).result(self._round_seconds))
                assert described == repr(call), (described, call)
            parts.append(_BOARD[(channel.job_id, index, other)])
        return parts


class PlainInputs(ChannelMeeting):
    """The shipped reference's meeting (inputs in the clear), recording the party."""

    def __init__(self, channel: Any, round_seconds: float) -> None:
        super().__init__(channel, round_seconds)
        _HERE.party = channel.my_index


@dataclass
class Views:
    """What one job showed each party, and the noise each drew."""

    shares: dict[int, list[int]] = field(default_factory=dict)
    received: dict[str, list[bytes]] = field(default_factory=lambda: defaultdict(list))
    parties: list[str] = field(default_factory=list)

    def others(self, party: int) -> list[list[int]]:
        """What `party` must not see: each other share, their sum (which with its own
        share gives the total) and the total noise."""
        rest = [s for q, s in self.shares.items() if q != party]
        return [*rest, list(np.sum(rest, axis=0)), list(np.sum(list(self.shares.values()), 0))]


def carries(payload: bytes, values: list[int]) -> bool:
    """Whether `payload` holds `values` as little-endian 64-bit integers or floats."""
    return any(np.asarray(values, dtype=kind).tobytes() in payload for kind in ("<i8", "<f8"))


def leaks(views: Views) -> list[tuple[str, list[int]]]:
    """(party, values) for every noise value a party received that was not its own."""
    found = []
    for index, name in enumerate(views.parties):
        for values in views.others(index):
            if any(carries(m, values) for m in views.received[name]):
                found.append((name, values))
    return found


@contextmanager
def recorded(monkeypatch: pytest.MonkeyPatch, meeting: type[ChannelMeeting]) -> Iterator[Views]:
    """Run jobs inside with `meeting`, recording each party's noise share and the bytes
    delivered to it over the mesh."""
    views = Views()
    real_share, real_put = noise.noise_share, memory._MemoryLink.put

    def share(scale: float, size: int) -> Any:
        # Shifted far from every other number a run shows (a draw of sd ~320 may be 0, or
        # a number a log line holds by chance); the flow of shares is what is tested.
        drawn = real_share(scale, size) + DISTINCT_OFFSET + 1000 * _HERE.party
        views.shares[_HERE.party] = [int(x) for x in drawn]
        return drawn

    def put(link: Any, message: Any) -> None:
        views.received[link._peer].append(message.SerializeToString())
        real_put(link, message)

    with monkeypatch.context() as patch:
        patch.setattr(reference_backend, "ChannelMeeting", meeting)
        patch.setattr(noise, "noise_share", share)
        patch.setattr(memory._MemoryLink, "put", put)
        yield views


def test_every_share_enters_and_no_party_sees_another_partys_noise(
    inprocess: InProcessFederation,
    data3: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fed = InProcessFederation(inprocess.hospitals, state=tmp_path)
    with caplog.at_level(logging.DEBUG), recorded(monkeypatch, SharedInputs) as views:
        result = fed.run(COUNT_TEMPLATE, PARAMS).result
    views.parties = [h.id for h in fed.hospitals]
    assert sorted(views.shares) == [0, 1, 2] and all(views.received.values())
    # (a) Every party's share is in the released value, and nothing else is.
    truth = truth_counts(data3, ["E11"])[()]
    assert result["suppressed"] is False
    total_noise = sum(s[0] for s in views.shares.values())
    assert result["count"] - truth == total_noise
    assert all(abs(s[0]) > 0 for s in views.shares.values()), "shares must be distinctive"
    # (b) No party received another's share, the others' sum or the total, in the clear.
    assert leaks(views) == []
    # (c) Nor does any keep or log the total noise or the noiseless total.
    secret_numbers = [total_noise, truth]
    for hospital in fed.hospitals:
        kept = kept_text(tmp_path / hospital.id)
        assert "charges" in kept, "the party's ledger is what its state folder holds"
        assert not any(as_text(v).search(kept) for v in secret_numbers)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "accepted" in logged, "the parties' logs were captured"
    assert not any(as_text(v).search(logged) for v in secret_numbers)


def kept_text(state: Path) -> str:
    """Everything a party keeps in its state folder, as text: the rows of its privacy
    ledger (SQLite, with its write-ahead log) and its audit log, the only things there."""
    audit = f"audit/{state.name}.jsonl"
    files = {p.relative_to(state).as_posix() for p in state.rglob("*") if p.is_file()}
    assert files <= {LEDGER_FILE, f"{LEDGER_FILE}-wal", f"{LEDGER_FILE}-shm", audit}, files
    with closing(sqlite3.connect(state / LEDGER_FILE)) as db:
        return "\n".join([*db.iterdump(), (state / audit).read_text()])


def as_text(value: int) -> re.Pattern[str]:
    """`value` as a number on its own in text (not a piece of a longer word or number)."""
    return re.compile(rf"(?<![\w.+-]){value}(?![\w.])")


def test_ablation_the_plaintext_reference_is_caught(
    inprocess: InProcessFederation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The shipped reference sends every input in the clear: each party's share then
    reaches both others, and the check says so."""
    with recorded(monkeypatch, PlainInputs) as views:
        inprocess.run(COUNT_TEMPLATE, PARAMS)
    views.parties = [h.id for h in inprocess.hospitals]
    found = leaks(views)
    for index, name in enumerate(views.parties):
        for other, share in views.shares.items():
            if other != index:
                assert (name, share) in found


def _leaky_program(
    self: CountAnalysis, local: list[int], params: Params, threshold: int
) -> NamedProgram:
    """A broken DP count: the noise inputs are opened (revealed to every party) before
    they are added; the released count is the same."""
    (release,) = self.noisy_releases(params)

    async def program(ops: SecureOps) -> NamedSecrets:
        totals = ops.sum_vectors(ops.input_ints(list(local), COUNT_INPUT_BITS))
        plan = noise.plan(params, release, ops.backend, ops.n_parties)
        assert plan is not None
        mine = noise._my_shares(plan, release.scale_vector(), 1.0)
        inputs = ops.input_ints(mine, COUNT_INPUT_BITS)
        for each in inputs:
            await ops.reveal(each)  # the bug
        totals = ops.add(totals, ops.sum_vectors(inputs))
        released = ops.ge_public(totals, threshold)
        return {"released": released, "counts": ops.mul(released, totals)}

    return program


def test_ablation_a_dp_program_that_opens_the_shares_is_caught(
    inprocess: InProcessFederation, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(CountAnalysis, "secure_program", _leaky_program)
    with recorded(monkeypatch, SharedInputs) as views:
        inprocess.run(COUNT_TEMPLATE, PARAMS)
    views.parties = [h.id for h in inprocess.hospitals]
    assert len(leaks(views)) >= 6  # each party sees both others' shares
