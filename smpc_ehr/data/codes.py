"""ICD-10-CM code shapes and code patterns, shared by the loader and cohort filters.

Codes are validated by shape only (we ship no code list): a letter, two letters or
digits, then optionally a dot and one to four letters or digits (``E75.22``, ``I10``).
A pattern selects a code and all its sub-codes, so ``E75.2`` selects ``E75.21`` and
``E75.22``; this is what a clinician means by "E75.2" and lets one query cover a family.
"""

from __future__ import annotations

import re

import numpy as np

CODE_REGEX = r"^[A-Z][0-9A-Z]{2}(\.[0-9A-Z]{1,4})?$"
_PATTERN = re.compile(r"^[A-Z][0-9A-Z]{2}(\.[0-9A-Z]{0,4})?$")


def normalize_pattern(pattern: str) -> str:
    """Return the canonical prefix of a code pattern (upper case, wildcard dropped).

    ``e84``, ``E84*`` and ``E84.*`` all become ``E84``. Raises ValueError for anything
    that is not a code or the start of one, so a typo cannot silently match nothing.
    """
    if not isinstance(pattern, str):
        raise ValueError(f"code pattern must be a string, got {type(pattern).__name__}")
    text = pattern.strip().upper()
    if text.endswith(".*"):
        text = text[:-2]
    elif text.endswith("*"):
        text = text[:-1]
    if text.endswith(".") or not _PATTERN.fullmatch(text):
        raise ValueError(
            f"invalid ICD-10-CM code pattern {pattern!r}: expected a letter, two letters or "
            "digits, optionally a dot and up to 4 letters or digits, optionally ending in "
            "'*' or '.*' (e.g. E75.22, E84, E84.*)"
        )
    return text


def match_table(code_table: np.ndarray, patterns: tuple[str, ...]) -> np.ndarray:
    """Boolean mask over a table of distinct codes: which codes any pattern selects.

    Matching runs on the (small) table of distinct codes, never per condition row.
    """
    hit = np.zeros(len(code_table), dtype=bool)
    for prefix in {normalize_pattern(p) for p in patterns}:
        hit |= np.char.startswith(code_table, prefix)
    return hit
