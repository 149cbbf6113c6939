"""Joint contingency table of two categorical variables, with small-cell suppression in
MPC, and Pearson's chi-square test of independence when no cell is suppressed.
Template: protocols/contingency.toml.

Leakage (the template's `leakage` text, verbatim):
Each hospital learns nothing but its own data: it sees only random-looking shares of the
other hospitals' counts and learns no joint count. The coordinator (and the analyst)
learns, for each cell and for the missing count, whether the count over all hospitals
reaches the threshold, and the count only if it does; a cell below the threshold is
reported as suppressed and its value is never revealed to anyone. The totals, expected
counts and the test are computed from released cells only, and only when no cell is
suppressed (they would otherwise give suppressed cells away). No hospital's own count is
revealed. Released counts can be combined with other releases (for example, a joint
count of the same cohort by sex gives row totals, and overlapping cohorts can be
differenced); in an exact run (without epsilon), the threshold and each hospital's
approval of this template limit that. With epsilon, every cell of the table and the
missing count is differentially private (distributed discrete Gaussian mechanism): each
hospital draws its own share of integer noise per cell with a cryptographically secure
exact sampler and inputs it secret-shared, and the sum of all shares is added to each
cell inside the secure computation before the small-cell test, so only noisy counts are
compared with the threshold and opened, and no one learns a noiseless count or the total
noise; a cell is therefore suppressed or released on its noisy count. The noise is
calibrated so that the guarantee holds against t colluding hospitals that subtract their
own shares (t is the backend's collusion threshold: (n-1)//2 with MPyC, n-1 with
CrypTen): each hospital's share carries 1/(n-t) of the noise variance the guarantee
needs, so the released noise variance is n/(n-t) times a trusted curator's. A patient is
assumed to be counted at one hospital and in one cell (a cell of the table, or missing),
so the L2 sensitivity of all the cells together is 1, and they spend the query's whole
rho. The totals, expected counts and the test are computed from the noisy cells (which
costs no further privacy), the test's p-value with a correction for the noise. The
released result states the noise's standard deviation, t, epsilon, delta (1e-6) and the
zero-concentrated DP rho the query spends; each hospital's ledger charges that rho to
the analyst's budget and to its total over all analysts (rho adds exactly over queries,
and the budget is stated as epsilon at the hospital's delta), which bounds what all of
an analyst's differentially private releases reveal together; exact runs are not covered
by it.

Not covered: what releases reveal in combination. The joint count of the same cohort
stratified by sex or age band (the count analysis) gives row or column totals, from
which a suppressed cell may be recovered, and overlapping cohorts can be differenced.
Only the threshold and each hospital's approval of the template limit that today in an
exact run. With epsilon, combinations are bounded by the privacy budget, which the
hospitals' ledgers enforce (not this package).
"""

from smpc_ehr.analyses.statistics.contingency.analysis import ContingencyAnalysis

ANALYSIS = ContingencyAnalysis()
