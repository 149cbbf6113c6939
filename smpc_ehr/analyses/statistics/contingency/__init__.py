"""Joint contingency table of two categorical variables, with small-cell suppression in (see analysis.py for how it runs and its leakage)."""

from smpc_ehr.analyses.statistics.contingency.analysis import ContingencyAnalysis

ANALYSIS = ContingencyAnalysis()
