"""Joint histogram of a numeric variable over given bin edges, with small-cell
suppression in MPC.
Template: protocols/histogram.toml.

Leakage (the template's `leakage` text, verbatim):
Each hospital learns nothing but its own data: it sees only random-looking shares of the
other hospitals' counts and learns no joint count. The coordinator (and the analyst)
learns, for each bin and for the outside and missing cells, whether the count over all
hospitals reaches the threshold, and the count only if it does; a cell below the
threshold is reported as suppressed and its value is never revealed to anyone. No total
is released (it would give a single suppressed cell away), and no single patient's
value, minimum or maximum, and no hospital's own count is revealed. Released counts can
be combined with other releases: in an exact run (without epsilon), the joint count of
the same cohort minus the released cells gives the suppressed ones, and histograms with
slightly different edges can be differenced; the threshold and each hospital's approval
of this template limit that. With epsilon, every cell (each bin, the outside and the
missing cell) is differentially private (distributed discrete Gaussian mechanism): each
hospital draws its own share of integer noise per cell with a cryptographically secure
exact sampler and inputs it secret-shared, and the sum of all shares is added to each
cell inside the secure computation before the small-cell test, so only noisy counts are
compared with the threshold and opened, and no one learns a noiseless count or the total
noise; a cell is therefore suppressed or released on its noisy count. The noise is
calibrated so that the guarantee holds against t colluding hospitals that subtract their
own shares (t is the backend's collusion threshold: (n-1)//2 with MPyC, n-1 with
CrypTen): each hospital's share carries 1/(n-t) of the noise variance the guarantee
needs, so the released noise variance is n/(n-t) times a trusted curator's. A patient is
assumed to be counted at one hospital and in one cell (a bin, outside or missing), so
the L2 sensitivity of all the cells together is 1, and they spend the query's whole rho.
The released result states the noise's standard deviation, t, epsilon, delta (1e-6) and
the zero-concentrated DP rho the query spends; each hospital's ledger charges that rho
to the analyst's budget and to its total over all analysts (rho adds exactly over
queries, and the budget is stated as epsilon at the hospital's delta), which bounds what
all of an analyst's differentially private releases reveal together; exact runs are not
covered by it.

Not covered: what releases reveal in combination. A suppressed cell can be recovered by
differencing: the joint count of the same cohort (the count analysis) minus this
histogram's released cells is the sum of its suppressed cells, and two histograms whose
edges differ slightly give the count between the differing edges. Only the threshold and
each hospital's approval of the template limit that today in an exact run. With epsilon,
combinations are bounded by the privacy budget, which the hospitals' ledgers enforce
(not this package).
"""

from smpc_ehr.analyses.statistics.histogram.analysis import HistogramAnalysis

ANALYSIS = HistogramAnalysis()
