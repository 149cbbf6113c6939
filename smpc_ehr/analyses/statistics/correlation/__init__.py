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

Not covered: what released statistics reveal in combination with other releases.
"""

from smpc_ehr.analyses.statistics.correlation.analysis import CorrelationAnalysis

ANALYSIS = CorrelationAnalysis()
