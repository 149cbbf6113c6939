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

Not covered: what releases reveal in combination.
"""

from smpc_ehr.analyses.statistics.ttest.analysis import TTestAnalysis

ANALYSIS = TTestAnalysis()
