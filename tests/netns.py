"""The multi-host test's network namespaces: scripts/benchsuite/netlab.py (shared with
the WAN benchmark, which adds a rate limit and a delaying relay)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

from benchsuite.netlab import SUBNET, namespaces, pids_in, why_not

__all__ = ["SUBNET", "namespaces", "pids_in", "why_not"]
