"""Joint odds ratio of a binary outcome for a binary exposure, with a 95% confidence (see analysis.py for how it runs and its leakage)."""

from smpc_ehr.analyses.statistics.odds_ratio.analysis import OddsRatioAnalysis

ANALYSIS = OddsRatioAnalysis()
