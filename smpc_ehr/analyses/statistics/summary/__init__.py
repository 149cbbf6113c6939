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

Not covered: what released statistics reveal in combination (for example the means of
two overlapping cohorts that differ by one patient); the threshold and each
hospital's approval of the template limit that. A variable of two values other than
0 and 1 (say 1/2) gives its counts the same way and is not held to the binary rule.
"""

from smpc_ehr.analyses.statistics.summary.analysis import SummaryAnalysis

ANALYSIS = SummaryAnalysis()
