"""Analyses, written once against the backend-neutral secure operations.

Each module's docstring states what every role learns (its leakage).
"""

from smpc_ehr.analyses.base import Analysis
from smpc_ehr.analyses.count import CountAnalysis
from smpc_ehr.analyses.selftest import SelftestAnalysis

ANALYSES: dict[str, Analysis] = {a.name: a for a in (CountAnalysis(), SelftestAnalysis())}
"""Analyses by the name a protocol template gives in `analysis = ...`."""
