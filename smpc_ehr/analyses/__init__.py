"""Analyses, written once against the backend-neutral secure operations.

Each module's docstring states what every role learns (its leakage).
"""

from smpc_ehr.analyses.base import Analysis
from smpc_ehr.analyses.contingency import ContingencyAnalysis
from smpc_ehr.analyses.correlation import CorrelationAnalysis
from smpc_ehr.analyses.count import CountAnalysis
from smpc_ehr.analyses.histogram import HistogramAnalysis
from smpc_ehr.analyses.kmeans import KMeansAnalysis
from smpc_ehr.analyses.logistic import LogisticRegressionAnalysis
from smpc_ehr.analyses.odds_ratio import OddsRatioAnalysis
from smpc_ehr.analyses.quantiles import QuantilesAnalysis
from smpc_ehr.analyses.selftest import SelftestAnalysis
from smpc_ehr.analyses.summary import SummaryAnalysis
from smpc_ehr.analyses.ttest import TTestAnalysis

_ALL: tuple[type[Analysis], ...] = (
    CountAnalysis,
    SelftestAnalysis,
    SummaryAnalysis,
    CorrelationAnalysis,
    HistogramAnalysis,
    QuantilesAnalysis,
    ContingencyAnalysis,
    TTestAnalysis,
    OddsRatioAnalysis,
    LogisticRegressionAnalysis,
    KMeansAnalysis,
)
ANALYSES: dict[str, Analysis] = {cls.name: cls() for cls in _ALL}
"""Analyses by the name a protocol template gives in `analysis = ...`."""
