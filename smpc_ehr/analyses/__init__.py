"""Analyses, written once against the backend-neutral secure operations.

Each module's docstring states what every role learns (its leakage).
"""

from smpc_ehr.analyses.base import Analysis
from smpc_ehr.analyses.count import CountAnalysis

ANALYSES: dict[str, Analysis] = {a.name: a for a in (CountAnalysis(),)}
"""Analyses by the name a protocol template gives in `analysis = ...`."""
