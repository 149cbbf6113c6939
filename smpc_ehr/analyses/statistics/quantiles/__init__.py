"""Quantiles of a numeric variable over the joint cohort, to a stated resolution,
revealing only the quantiles themselves (rounded up to a public grid).
Template: protocols/quantiles.toml.

Leakage (the template's `leakage` text, verbatim):
Each hospital learns nothing but its own data: it sees only random-looking shares of the
others' counts, and not the result. The coordinator (and the analyst) learns, per q,
whether at least the threshold of patients lies on each side of the quantile and, only
if so, the quantile rounded up to the grid (or only that it lies below low or above
high); and n, only if it reaches the threshold. No cumulative count, no minimum or
maximum, and nothing about any single hospital is revealed: the search over the grid
happens inside MPC in one step, not as an interactive bisection whose path would be
opened. Released quantiles can be combined with other releases (for example quantiles of
overlapping cohorts, or many quantiles on a fine grid of a small cohort); in an exact
run (without epsilon), the threshold, this template's bounds (at most 9 quantiles, each
in 0.01..0.99, and at most 2000 grid steps) and each hospital's approval of this
template limit that. With epsilon, the count of each cell of the public grid (below low,
between two grid points, above high) and the missing count is differentially private
(distributed discrete Gaussian mechanism): each hospital draws its own share of integer
noise per cell with a cryptographically secure exact sampler and inputs it
secret-shared, and the sum of all shares is added to each cell inside the secure
computation before anything is compared or opened, and no one learns a noiseless count,
a noiseless cumulative count or the total noise. The noise is calibrated so that the
guarantee holds against t colluding hospitals that subtract their own shares (t is the
backend's collusion threshold: (n-1)//2 with MPyC, n-1 with CrypTen): each hospital's
share carries 1/(n-t) of the noise variance the guarantee needs, so the released noise
variance is n/(n-t) times a trusted curator's. A patient is assumed to be counted at one
hospital and in one cell (a grid cell, or missing), so the L2 sensitivity of all the
cells together is 1, and they spend the query's whole rho. Everything opened is computed
from the noisy cells inside the secure computation (which costs no further privacy): n
is the sum of the noisy grid cells (its noise standard deviation, sqrt(B + 2) times a
cell's for B grid steps, is stated), each quantile is read from the noisy cumulative
counts, and the threshold rules use the noisy n. The released result states the noise's
standard deviation, t, epsilon, delta (1e-6) and the zero-concentrated DP rho the query
spends; each hospital's ledger charges that rho to the analyst's budget and to its total
over all analysts (rho adds exactly over queries, and the budget is stated as epsilon at
the hospital's delta), which bounds what all of an analyst's differentially private
releases reveal together; exact runs are not covered by it.

Not covered: what several releases reveal in combination (for example quantiles of
overlapping cohorts, or many q's and fine grids over a small cohort narrowing down the
values of single patients; a released quantile together with the counts that n-1
colluding hospitals know); only the threshold and each hospital's approval of the
template (its bounds on q, step and the grid size) limit that today in an exact run.
With epsilon, combinations are bounded by the privacy budget, which the hospitals'
ledgers enforce (not this package).
"""

from smpc_ehr.analyses.statistics.quantiles.analysis import QuantilesAnalysis

ANALYSIS = QuantilesAnalysis()
