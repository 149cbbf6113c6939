"""Quantiles of a numeric variable over the joint cohort, to a stated resolution, (see analysis.py for how it runs and its leakage)."""

from smpc_ehr.analyses.statistics.quantiles.analysis import QuantilesAnalysis

ANALYSIS = QuantilesAnalysis()
