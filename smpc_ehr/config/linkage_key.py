"""The federation's linkage key file: a 32-byte secret the hospitals share (and the
coordinator, the dealer and the analysts never have), with which each party keys its
patients' link ids (`smpc_ehr.data.linkage`) before a deduplicated count.

The file holds the key as 64 hexadecimal digits and a newline, mode 0600, like a
private key; docs/data.md ("Linkage key") says who makes it, how it travels and how
it is rotated.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from smpc_ehr.errors import ConfigError

KEY_BYTES = 32
"""HMAC-SHA256's key size: 256 bits, as many as its output."""


def new_linkage_key(path: Path, *, force: bool = False) -> Path:
    """Write a fresh random key to `path` (mode 0600); refuses to overwrite a key unless
    `force`, since replacing it unlinks every party that still holds the old one."""
    path = Path(path)
    if path.exists() and not force:
        raise ConfigError(f"{path} exists; a new linkage key must be given to every hospital")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(secrets.token_bytes(KEY_BYTES).hex() + "\n")
    return path


def read_linkage_key(path: Path) -> bytes:
    """The key in `path`; an error naming the file if it is not 64 hex digits."""
    try:
        text = Path(path).read_text(encoding="ascii").strip()
        key = bytes.fromhex(text)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"{path}: not a linkage key ({exc.__class__.__name__})") from None
    if len(key) != KEY_BYTES:
        raise ConfigError(f"{path}: a linkage key is {KEY_BYTES} bytes (64 hex digits)")
    return key
