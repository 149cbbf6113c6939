"""Joint contingency table of two categorical variables, with small-cell suppression in
MPC, and Pearson's chi-square test of independence when no cell is suppressed.
Template: protocols/contingency.toml.

Leakage (the template's `leakage` text, verbatim):
Each hospital learns nothing but its own data: it sees only random-looking shares of
the other hospitals' counts and learns no joint count. The coordinator (and the
analyst) learns, for each cell and for the missing count, whether the count over all
hospitals reaches the threshold, and the count only if it does; a cell below the
threshold is reported as suppressed and its value is never revealed to anyone. The
totals, expected counts and the test are computed from released cells only, and only
when no cell is suppressed (they would otherwise give suppressed cells away). No
hospital's own count is revealed. Released counts can be combined with other releases
(for example, a joint count of the same cohort by sex gives row totals, and
overlapping cohorts can be differenced); the threshold and each hospital's approval
of this template limit that.

Not covered: what releases reveal in combination. The joint count of the same cohort
stratified by sex or age band (the count analysis) gives row or column totals, from
which a suppressed cell may be recovered, and overlapping cohorts can be differenced.
Only the threshold and each hospital's approval of the template limit that today.
"""

from smpc_ehr.analyses.statistics.contingency.analysis import ContingencyAnalysis

ANALYSIS = ContingencyAnalysis()
