"""Joint logistic regression, "iterates" mode: Newton-Raphson where the parties learn (see analysis.py for how it runs and its leakage)."""

from smpc_ehr.analyses.models.logistic.analysis import LogisticRegressionAnalysis

ANALYSIS = LogisticRegressionAnalysis()
