"""Joint summary of numeric variables ("Table 1"): n, missing, mean, variance, sd, se,
optionally per level of a categorical variable.
Template: protocols/summary.toml.

Leakage (the template's `leakage` text, verbatim):
Each hospital learns nothing but its own data: it sees only random-looking shares of
the others' moments. The coordinator (and the analyst) learns, per variable and
stratum, whether n reaches the threshold and, only if it does, n, the pooled mean and
the pooled variance (sd and se are computed from these by the coordinator); the
missing count is released only if it reaches the threshold itself and n is released
(n plus missing is the stratum's size). Where a
variable's values in a stratum are all 0 or 1 at every hospital (decided inside MPC),
its mean gives its count of ones: its mean, variance, sd and se are released only if
both its ones and its zeros reach the threshold, otherwise withheld (n still shown).
No minimum, maximum or other single patient's value is released, and no hospital's
own count, mean or variance is revealed to anyone. Released statistics can be
combined with other releases (for example, differences between overlapping cohorts);
the threshold and each hospital's approval of this template limit that.
With epsilon, every released statistic is differentially private (distributed discrete
Gaussian mechanism): each hospital clips each value to the public bounds of its variable
(a value outside is moved to the nearest bound), centres it at their midpoint, divides
it by their half-width and inputs, per variable and stratum, its count, its missing
count and the sums of these values and of their squares; it also draws its own share of
noise for each of them with a cryptographically secure exact sampler and inputs it
secret-shared, and the sum of all shares is added to each total inside the secure
computation before the small-cell test. So only noisy counts are compared with the
threshold, only noisy counts and sums are opened (the mean and variance are computed
from them; the missing count only beside a released n), no one learns a noiseless value
or the total noise, and the 0/1 rule is not applied (a noisy mean gives only a noisy
count of ones).
The noise is calibrated so that the guarantee holds against t colluding hospitals that
subtract their own shares (t is the backend's collusion threshold: (n-1)//2 with MPyC,
n-1 with CrypTen): each hospital's share carries 1/(n-t) of the noise variance the
guarantee needs, so the released noise variance is n/(n-t) times a trusted curator's.
A patient is assumed to be counted at one hospital and in one stratum: for each
variable, adding or removing a patient changes the count and the two sums by at most 1
each (plus a rounding slack of 2^-15) or the missing count by 1, and the whole table is
one release, calibrated to that L2 sensitivity, that spends the query's whole budget.
The query spends the zero-concentrated DP rho that epsilon allows at delta 1e-6; each
hospital's ledger adds up the rho of the queries it runs exactly and converts the total
to epsilon at its policy's delta for the budget check. The released result states the
noise's standard deviation (in units of the half-width), t, epsilon, delta and rho.

Not covered: what released statistics reveal in combination (for example the means of
two overlapping cohorts that differ by one patient); the threshold and each
hospital's approval of the template limit that. A variable of two values other than
0 and 1 (say 1/2) gives its counts the same way and is not held to the binary rule.
"""

from smpc_ehr.analyses.statistics.summary.analysis import SummaryAnalysis

ANALYSIS = SummaryAnalysis()
