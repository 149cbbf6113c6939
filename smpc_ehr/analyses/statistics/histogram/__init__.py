"""Joint histogram of a numeric variable over given bin edges, with small-cell (see analysis.py for how it runs and its leakage)."""

from smpc_ehr.analyses.statistics.histogram.analysis import HistogramAnalysis

ANALYSIS = HistogramAnalysis()
