"""The append-only, hash-chained audit log: one canonical JSON object per line.

Each entry is `{"seq", "time", "kind", "fields", "prev", "hash"}`: `seq` counts from 1
(= its line number), `prev` is the previous entry's `hash` (64 zeros for the first)
and `hash` is the SHA-256 of the entry's canonical bytes without `hash`. Canonical
means sorted keys, no spaces, ASCII only, so anyone recomputes the same hashes; the
line itself is the canonical bytes of the whole entry, so any changed byte shows.
Every append is one write of one line, then fsync: a crash can leave at most a
partial last line, which `verify` reports and `AuditLog` refuses to append after.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smpc_ehr.errors import SmpcEhrError

GENESIS = "0" * 64
"""The `prev` of a log's first entry."""
ENTRY_KEYS: dict[str, type] = {
    "seq": int,
    "time": str,
    "kind": str,
    "fields": dict,
    "prev": str,
    "hash": str,
}
"""An entry's keys and their JSON types."""


class AuditError(SmpcEhrError):
    """An audit log or head is unreadable, broken, or cannot be written."""


def canonical(value: Any) -> bytes:
    """The canonical JSON bytes of `value`: sorted keys, no spaces, ASCII."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode("ascii")


def entry_hash(entry: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of an entry's canonical bytes without its own `hash`."""
    body = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256(canonical(body)).hexdigest()


def now_text() -> str:
    """UTC time in ISO 8601 with milliseconds, as entries and heads record it."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Entry:
    """One checked entry of a log."""

    seq: int
    time: str
    kind: str
    fields: dict[str, Any]
    prev: str
    hash: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "time": self.time,
            "kind": self.kind,
            "fields": self.fields,
            "prev": self.prev,
            "hash": self.hash,
        }


def make_entry(seq: int, kind: str, fields: Mapping[str, Any], prev: str, time: str) -> Entry:
    """A new entry after one whose hash is `prev`."""
    body = {"seq": seq, "time": time, "kind": kind, "fields": dict(fields), "prev": prev}
    return Entry(seq, time, kind, dict(fields), prev, entry_hash(body))


def parse_line(line: bytes) -> Entry:
    """An entry from its line (without the newline); ValueError says what is wrong with
    it on its own (its link to the previous entry is the reader's to check)."""
    try:
        value = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        raise ValueError("not a JSON object") from None
    if not isinstance(value, dict) or set(value) != set(ENTRY_KEYS):
        raise ValueError("not an audit entry (keys seq, time, kind, fields, prev, hash)")
    if canonical(value) != line:
        raise ValueError("not in canonical form (bytes were changed)")
    for key, kind in ENTRY_KEYS.items():
        if not isinstance(value[key], kind) or isinstance(value[key], bool):
            raise ValueError(f"{key} has the wrong type")
    if entry_hash(value) != value["hash"]:
        raise ValueError("its hash does not match its content (bytes were changed)")
    return Entry(**value)


class AuditLog:
    """The writer of one party's log: appends entries, fsync'd, one line each.

    Opening reads and checks the whole existing log (so appends continue a valid
    chain) and refuses to append after a broken one, naming the entry. Thread-safe.
    """

    def __init__(self, path: Path | str) -> None:
        from smpc_ehr.audit.verify import read_chain

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        entries, problem = read_chain(self.path)
        if problem is not None:
            raise AuditError(
                f"audit log {self.path} is broken at {problem.where()}: {problem.message}; "
                "nothing is appended after it (keep a copy, see `smpc-ehr audit verify`)"
            )
        last = entries[-1] if entries else None
        self._seq = last.seq if last else 0
        self._hash = last.hash if last else GENESIS
        self._lock = threading.Lock()
        self._failed = ""

    @property
    def head(self) -> tuple[int, str]:
        """(seq, hash) of the last entry; (0, GENESIS) for an empty log."""
        with self._lock:
            return self._seq, self._hash

    def append(self, kind: str, fields: Mapping[str, Any] | None = None) -> Entry:
        """Write one entry and fsync it; AuditError if the disk refuses."""
        with self._lock:
            if self._failed:
                raise AuditError(
                    f"audit log {self.path} is not written any more after a failed write "
                    f"({self._failed}); check it with `smpc-ehr audit verify`, then restart"
                )
            entry = make_entry(self._seq + 1, kind, fields or {}, self._hash, now_text())
            line = canonical(entry.as_dict()) + b"\n"
            try:
                append_line(self.path, line)
            except OSError as exc:
                self._failed = exc.strerror or str(exc)  # a partial line may be there now
                raise AuditError(f"cannot write audit log {self.path}: {exc.strerror}") from exc
            self._seq, self._hash = entry.seq, entry.hash
            return entry


def append_line(path: Path, line: bytes) -> None:
    """Append `line` (ending in a newline) to `path` with O_APPEND, then fsync: a crash
    leaves at most a partial last line."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        written = 0
        while written < len(line):
            written += os.write(fd, line[written:])
        os.fsync(fd)
    finally:
        os.close(fd)
