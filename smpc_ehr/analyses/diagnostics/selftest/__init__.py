"""Backend self-test: every secure operation, on inputs that are public by construction. (see analysis.py for how it runs and its leakage)."""

from smpc_ehr.analyses.diagnostics.selftest.analysis import SelftestAnalysis

ANALYSIS = SelftestAnalysis()
