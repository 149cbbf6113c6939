"""Joint odds ratio of a binary outcome for a binary exposure, with a 95% confidence
interval and a Wald test, from a 2x2 table released with small-cell suppression in MPC.
Template: protocols/odds_ratio.toml.

Leakage (the template's `leakage` text, verbatim):
Each hospital learns nothing but its own data: it sees only random-looking shares of
the other hospitals' counts and learns no joint count. The coordinator (and the
analyst) learns, for each of the four cells and for the missing count, whether the
count over all hospitals reaches the threshold, and the count only if it does; a cell
below the threshold is reported as suppressed and its value is never revealed to
anyone. The odds ratio, interval and test are computed from released cells only, and
only when all four are released (they would otherwise give a suppressed cell away).
No hospital's own count is revealed. Released counts can be combined with other
releases (for example, a joint count of the patients with the condition gives a
margin of the table, and overlapping cohorts can be differenced); the threshold and
each hospital's approval of this template limit that.

Not covered: what releases reveal in combination. Joint counts of the same cohort
(for example the patients with the condition, from the count analysis) give margins
from which a suppressed cell may be recovered, and overlapping cohorts can be
differenced. Only the threshold and each hospital's approval of the template limit
that today.
"""

from smpc_ehr.analyses.statistics.odds_ratio.analysis import OddsRatioAnalysis

ANALYSIS = OddsRatioAnalysis()
