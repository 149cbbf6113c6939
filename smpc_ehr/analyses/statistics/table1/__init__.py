"""The "Table 1" of a paper: per group and overall, n, mean (SD) or median [IQR] per
continuous variable, n (%) per level of categorical variables, missing counts and the
group-comparison p-values, with complementary suppression decided inside MPC.
Template: protocols/table1.toml.

Leakage (the template's `leakage` text, verbatim):
Each hospital learns nothing but its own data: it sees only random-looking shares of the
others' counts and moments. The coordinator (and the analyst) learns the table: per
column (each group and overall) its n, and per variable and column the counts of
patients at each level and missing, each only under these rules, decided inside MPC. A
count from 1 to the threshold less one is hidden (a count of 0 is shown, as under the
CMS cell-size suppression policy: the analyst learns that no patient of the column has
that level). Within a column and variable, if one count is hidden, the smallest shown
count of at least the threshold is hidden too, so the column's n minus its shown counts
is the sum of at least two hidden counts holding at least the threshold. A group whose n
is hidden is hidden whole, with the smallest other group of at least the threshold. An
overall count is hidden where a shown group hides that row's count, where the hidden
groups' counts of that row add up to 1 to the threshold less one (the overall count less
the shown groups' would give that sum), or where it is itself hidden by the first rule;
if a variable then hides exactly one overall count, its smallest shown overall count is
hidden too. So every hidden count lies on a cycle of hidden counts of the table and its
margins (the groups' n, the overall column, the overall n): no hidden count is a sum or
difference of shown ones within the table, although the counts' being non-negative can
bound a hidden count to a small range. A mean and SD are released only where the
column's number of patients with a value is shown (a mean of whole numbers gives its n)
and, for a variable of 0s and 1s, its ones and zeros both reach the threshold; the
overall mean and SD only where every group's are released (the overall sum less the
groups' would give a hidden group's); a quartile (median, IQR) only in a shown column
with at least the threshold of patients on either side of it, rounded up to the grid
(whether a quartile is released tells whether the column's patients with a value reach 2
or 4 times the threshold). The patients without a group level (left out) are counted and
shown under the first rule. Percentages, SDs and p-values are computed by the
coordinator from released values. No hospital's own count or moment and no single
patient's value is revealed. Not covered: combinations with other releases (the joint
count of the same cohort minus the overall n gives the left-out count; overlapping
cohorts can be differenced); the threshold and each hospital's approval of this template
limit that.

Not covered: a mean is withheld wherever its column hides the variable's missing count
(1 to t - 1 patients missing), even over many patients: releasing it rounded inside MPC
would keep it, a later version's work.
"""

from smpc_ehr.analyses.statistics.table1.analysis import Table1Analysis

ANALYSIS = Table1Analysis()
