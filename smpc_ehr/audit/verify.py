"""Checking a party's audit log: its own chain, then the heads others hold of it.

A changed byte breaks that entry's canonical form or hash; a removed or reordered
entry breaks `seq` or `prev` at the entry after it; a crash mid-write leaves a
partial last line; a truncated log is shorter than a head someone holds; a log
rewritten and re-chained differs from a held head at that head's entry; two signed
heads of one party for the same seq with different hashes prove it forked its log.
Each problem names the line and seq of the first entry it concerns.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from smpc_ehr.audit.chain import GENESIS, Entry, parse_line
from smpc_ehr.audit.heads import HeldHead, check_head


@dataclass(frozen=True)
class Problem:
    """What is wrong, and where: a log line / entry seq (either may be unknown)."""

    path: Path
    line: int | None
    seq: int | None
    message: str

    def where(self) -> str:
        parts = []
        if self.line is not None:
            parts.append(f"line {self.line}")
        if self.seq is not None:
            parts.append(f"seq {self.seq}")
        return " ".join(parts) or "its start"

    def __str__(self) -> str:
        return f"{self.path}: {self.where()}: {self.message}"


def read_chain(path: Path) -> tuple[list[Entry], Problem | None]:
    """The log's entries up to the first broken one, and that problem (None if the whole
    log is a valid chain). A missing log is an empty one."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return [], None
    entries: list[Entry] = []
    prev = GENESIS
    lines = data.split(b"\n")
    complete, tail = lines[:-1], lines[-1]
    for number, line in enumerate(complete, start=1):
        expected = len(entries) + 1
        try:
            entry = parse_line(line)
        except ValueError as exc:
            return entries, Problem(path, number, expected, f"entry is broken: {exc}")
        if entry.seq != expected:
            return entries, Problem(
                path,
                number,
                expected,
                f"entry has seq {entry.seq} where seq {expected} belongs "
                "(entries were removed or reordered)",
            )
        if entry.prev != prev:
            return entries, Problem(
                path,
                number,
                expected,
                "entry does not link to the entry before it (entries were removed, "
                "reordered or changed)",
            )
        entries.append(entry)
        prev = entry.hash
    if tail:
        return entries, Problem(
            path,
            len(complete) + 1,
            len(entries) + 1,
            "partial last entry (no line end: the process stopped while writing it, "
            "or bytes were cut)",
        )
    return entries, None


def verify_log(
    path: Path, party: str, held: Iterable[HeldHead], ca_pem: bytes
) -> tuple[list[Entry], list[Problem]]:
    """Check `party`'s log at `path` against its chain and the heads of it `held` by
    others; returns the valid entries and every problem, the first broken entry first."""
    entries, broken = read_chain(path)
    problems = [broken] if broken else []
    valid: list[HeldHead] = []
    for kept in held:
        source = f"{kept.holder}'s head at {kept.path} line {kept.line}"
        invalid = head_problem(kept, party, ca_pem)
        if invalid is not None:
            problems.append(Problem(path, None, None, f"{source} is not valid: {invalid}"))
            continue
        valid.append(kept)
        head = kept.head
        assert head is not None
        if head.seq < 1:
            continue  # a head of an empty log pins nothing
        if head.seq > len(entries):
            if broken is None:  # else the broken entry comes first and hides the rest
                problems.append(
                    Problem(
                        path,
                        len(entries) + 1,
                        len(entries) + 1,
                        f"the log ends after seq {len(entries)}, but {source} is signed "
                        f"for seq {head.seq} (the log was truncated)",
                    )
                )
            continue
        if entries[head.seq - 1].hash != head.hash:
            problems.append(
                Problem(
                    path,
                    head.seq,
                    head.seq,
                    f"entry differs from {source} (the log was rewritten at or before it)",
                )
            )
    problems += forks(party, valid)
    problems.sort(key=lambda p: (p.seq is None, p.seq or 0))
    return entries, problems


def forks(party: str, valid: Iterable[HeldHead]) -> list[Problem]:
    """Heads of `party` (each already checked: `head_problem` found nothing) that
    disagree at the same seq. Both are signed by `party`, so this proves it forked its
    log (showed one history to one holder and another to another), whatever its log
    says now. Each problem names the seq, both hashes and where each head is held."""
    by_seq: dict[int, dict[str, HeldHead]] = {}
    for kept in valid:
        assert kept.head is not None
        by_seq.setdefault(kept.head.seq, {}).setdefault(kept.head.hash, kept)
    problems = []
    for seq, by_hash in sorted(by_seq.items()):
        (first_hash, first), *others = by_hash.items()
        for other_hash, other in others:
            message = (
                f"{party} signed two different heads for seq {seq}: {first_hash} (held by "
                f"{first.holder}, this line) and {other_hash} (held by {other.holder} at "
                f"{other.path} line {other.line}): {party} forked its log"
            )
            problems.append(Problem(first.path, first.line, seq, message))
    return problems


def head_problem(kept: HeldHead, party: str, ca_pem: bytes) -> str | None:
    """What is wrong with a held head of `party` (unreadable, filed under the wrong
    party, not signed by the CA-issued certificate of its party); None if valid."""
    if kept.head is None:
        return f"unreadable: {kept.problem}"
    if kept.head.party != party:
        return f"it is a head of {kept.head.party!r}, filed as {party!r}'s"
    try:
        check_head(kept.head, ca_pem)
    except ValueError as exc:
        return str(exc)
    return None
