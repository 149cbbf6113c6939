"""Welch two-sample t-test of a numeric variable between two groups, across hospitals.
Template: protocols/ttest.toml.

Leakage (the template's `leakage` text, verbatim):
Each hospital learns nothing but its own data: it sees only random-looking shares.
The coordinator (and the analyst) learns, per group, whether it reaches the threshold
and, only then, its n, mean and variance (from which the test follows); missing counts
only if they reach the threshold. If a group is below the threshold, the test is
refused and nothing about that group is released. If the variable is 0/1 (all values
0 or 1 at every hospital, decided inside MPC), a group's mean gives its count of ones:
the group's mean and variance are released only if both its ones and its zeros reach
the threshold, otherwise they are withheld (n still shown) and the test is refused.
No hospital's own moments and no single patient's value are revealed to anyone.
Released statistics can be combined with other releases; the threshold and each
hospital's approval limit that.
With epsilon, every released statistic is differentially private (distributed discrete
Gaussian mechanism): each hospital clips each value to the public bounds of the variable
(a value outside is moved to the nearest bound), centres it at their midpoint, divides
it by their half-width and inputs, per group, its count, its missing count and the sums
of these values and of their squares; it also draws its own share of noise for each of
them with a cryptographically secure exact sampler and inputs it secret-shared, and the
sum of all shares is added to each total inside the secure computation before the
small-cell test. So only noisy counts are compared with the threshold, only noisy counts
and sums are opened (the groups' means and variances, and from them the test, are
computed from them; a missing count only beside a released n), no one learns a
noiseless value or the total noise, and the 0/1 rule is not applied (a noisy mean gives
only a noisy count of ones). The standard error of the difference includes the noise's
variance.
The noise is calibrated so that the guarantee holds against t colluding hospitals that
subtract their own shares (t is the backend's collusion threshold: (n-1)//2 with MPyC,
n-1 with CrypTen): each hospital's share carries 1/(n-t) of the noise variance the
guarantee needs, so the released noise variance is n/(n-t) times a trusted curator's.
A patient is assumed to be counted at one hospital and in one group: adding or removing
a patient changes the group's count and two sums by at most 1 each (plus a rounding
slack of 2^-15) or its missing count by 1, and both groups are one release, calibrated
to that L2 sensitivity, that spends the query's whole budget.
The query spends the zero-concentrated DP rho that epsilon allows at delta 1e-6; each
hospital's ledger adds up the rho of the queries it runs exactly and converts the total
to epsilon at its policy's delta for the budget check. The released result states the
noise's standard deviation (in units of the half-width), t, epsilon, delta and rho.

Not covered: what releases reveal in combination.
"""

from smpc_ehr.analyses.statistics.ttest.analysis import TTestAnalysis

ANALYSIS = TTestAnalysis()
