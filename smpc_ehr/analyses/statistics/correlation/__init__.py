"""Joint covariance and Pearson correlation matrix of numeric variables (complete-case).
Template: protocols/correlation.toml.

Leakage (the template's `leakage` text, verbatim):
Each hospital learns nothing but its own data: it sees only random-looking shares of
the others' moments. The coordinator (and the analyst) learns whether the
complete-case count reaches the threshold and, only if it does, that count, the means
and the covariance matrix, from which the correlations follow; each missing count only
if it reaches the threshold. If a variable is 0/1 over the complete cases (all values
0 or 1 at every hospital, decided inside MPC), its mean gives its count of ones: the
means, covariances and correlations are then released only if both its ones and its
zeros reach the threshold and, for two such variables (whose means and covariance
give their 2 x 2 table), every cell of that table does; otherwise all are withheld
(the count still shown).
No hospital's own moments and no single patient's value are revealed to anyone.
Released statistics can be combined with other releases; the threshold and each
hospital's approval of this template limit that.
With epsilon, every released statistic is differentially private (distributed discrete
Gaussian mechanism): each hospital clips each value to the public bounds of its variable
(a value outside is moved to the nearest bound), centres it at their midpoint, divides
it by their half-width and inputs, over its complete cases, their count, the sums of
these values and the sums of their squares and pairwise products, and each variable's
missing count; it also draws its own share of noise for each of them with a
cryptographically secure exact sampler and inputs it secret-shared, and the sum of all
shares is added to each total inside the secure computation before the small-cell test.
So only noisy counts are compared with the threshold, only noisy counts and sums are
opened (the means, the covariance matrix and the correlations are computed from them,
the correlation matrix projected to the nearest valid one), no one learns a noiseless
value or the total noise, and the 0/1 rules are not applied (noisy means and
covariances give only noisy counts).
The noise is calibrated so that the guarantee holds against t colluding hospitals that
subtract their own shares (t is the backend's collusion threshold: (n-1)//2 with MPyC,
n-1 with CrypTen): each hospital's share carries 1/(n-t) of the noise variance the
guarantee needs, so the released noise variance is n/(n-t) times a trusted curator's.
A patient is assumed to be counted at one hospital: a complete case changes the count by
1 and each of the sums, sums of squares and sums of products by at most 1 (plus a
rounding slack of 2^-15), a patient missing k variables changes k missing counts by 1,
and all of it is one release, calibrated to that L2 sensitivity, that spends the
query's whole budget.
The query spends the zero-concentrated DP rho that epsilon allows at delta 1e-6; each
hospital's ledger adds up the rho of the queries it runs exactly and converts the total
to epsilon at its policy's delta for the budget check. The released result states the
noise's standard deviation (in units of the half-width), t, epsilon, delta and rho.

Not covered: what released statistics reveal in combination with other releases.
"""

from smpc_ehr.analyses.statistics.correlation.analysis import CorrelationAnalysis

ANALYSIS = CorrelationAnalysis()
