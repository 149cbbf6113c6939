"""Joint covariance and Pearson correlation matrix of numeric variables (complete-case). (see analysis.py for how it runs and its leakage)."""

from smpc_ehr.analyses.statistics.correlation.analysis import CorrelationAnalysis

ANALYSIS = CorrelationAnalysis()
