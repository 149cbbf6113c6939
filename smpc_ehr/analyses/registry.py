"""Finds every analysis package, so adding an analysis needs no list edited anywhere."""

from __future__ import annotations

import importlib
import pkgutil

from smpc_ehr.analyses.base import Analysis

FAMILIES = ("statistics", "models", "diagnostics")
"""The folders under smpc_ehr/analyses/ whose subpackages are analyses."""


def discover() -> dict[str, Analysis]:
    """Every analysis package's `ANALYSIS`, by its name (a duplicate name is an error)."""
    found: dict[str, Analysis] = {}
    for family in FAMILIES:
        package = importlib.import_module(f"smpc_ehr.analyses.{family}")
        for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
            if not info.ispkg:
                continue
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            analysis = getattr(module, "ANALYSIS", None)
            if not isinstance(analysis, Analysis):
                raise TypeError(f"{module.__name__} sets no ANALYSIS (an Analysis instance)")
            if analysis.name in found:
                raise ValueError(f"two analyses are named {analysis.name!r}")
            found[analysis.name] = analysis
    return found
