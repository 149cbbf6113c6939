"""The plaintext truth the privacy sections compare with: tests/_truth.py (pandas on the
pooled files, independent of smpc_ehr), made importable from scripts/."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

from tests._truth import BANDS, SEXES, ages, pooled  # noqa: E402

__all__ = ["BANDS", "ROOT", "SEXES", "ages", "pooled"]
