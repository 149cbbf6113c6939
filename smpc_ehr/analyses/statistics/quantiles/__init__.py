"""Quantiles of a numeric variable over the joint cohort, to a stated resolution,
revealing only the quantiles themselves (rounded up to a public grid).
Template: protocols/quantiles.toml.

Leakage (the template's `leakage` text, verbatim):
Each hospital learns nothing but its own data: it sees only random-looking shares of
the others' counts, and not the result. The coordinator (and the analyst) learns, per
q, whether at least the threshold of patients lies on each side of the quantile and,
only if so, the quantile rounded up to the grid (or only that it lies below low or
above high); and n, only if it reaches the threshold. No cumulative count, no minimum
or maximum, and nothing about any single hospital is revealed: the search over the
grid happens inside MPC in one step, not as an interactive bisection whose path would
be opened. Released quantiles can be combined with other releases (for example
quantiles of overlapping cohorts, or many quantiles on a fine grid of a small cohort);
the threshold, this template's bounds (at most 9 quantiles, each in 0.01..0.99, and
at most 2000 grid steps) and each hospital's approval of this template limit that.

Not covered: what several releases reveal in combination (for example quantiles of
overlapping cohorts, or many q's and fine grids over a small cohort narrowing down
the values of single patients; a released quantile together with the counts that
n-1 colluding hospitals know); only the threshold and each hospital's approval of
the template (its bounds on q, step and the grid size) limit that today.
"""

from smpc_ehr.analyses.statistics.quantiles.analysis import QuantilesAnalysis

ANALYSIS = QuantilesAnalysis()
