"""Joint summary of numeric variables ("Table 1"): n, missing, mean, variance, sd, se, (see analysis.py for how it runs and its leakage)."""

from smpc_ehr.analyses.statistics.summary.analysis import SummaryAnalysis

ANALYSIS = SummaryAnalysis()
