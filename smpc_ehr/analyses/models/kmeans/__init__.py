"""Joint k-means clustering of patients, "iterates" mode: Lloyd's algorithm where the (see analysis.py for how it runs and its leakage)."""

from smpc_ehr.analyses.models.kmeans.analysis import KMeansAnalysis

ANALYSIS = KMeansAnalysis()
