"""Welch two-sample t-test of a numeric variable between two groups, across hospitals. (see analysis.py for how it runs and its leakage)."""

from smpc_ehr.analyses.statistics.ttest.analysis import TTestAnalysis

ANALYSIS = TTestAnalysis()
