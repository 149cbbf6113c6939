"""Analyses, written once against the backend-neutral secure operations.

Each analysis is one package in a family folder (`statistics/`, `models/`,
`diagnostics/`): its `__init__.py` says what every role learns (its leakage) and
sets `ANALYSIS`, the instance the registry finds. `common/` holds the building
blocks several analyses share (disclosure rules, cohort variables, pooled moments).
"""

from smpc_ehr.analyses.base import Analysis
from smpc_ehr.analyses.registry import discover

ANALYSES: dict[str, Analysis] = discover()
"""Analyses by the name a protocol template gives in `analysis = ...`."""
