"""The canonical hash of a protocol template, computed independently of smpc_ehr:
sha256 of the template's TOML data as sorted, compact, ASCII JSON."""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path


def independent_hash(template: str | Path) -> str:
    """ "sha256:<hex>" of a template given as TOML text or as a file."""
    text = template.read_text() if isinstance(template, Path) else template
    canon = json.dumps(tomllib.loads(text), sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canon.encode()).hexdigest()
