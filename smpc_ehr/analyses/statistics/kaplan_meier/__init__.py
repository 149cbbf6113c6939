"""Joint Kaplan-Meier survival curves on a public time grid, with the log-rank test
between groups; grid points released while the joint number at risk reaches the
threshold, decided in MPC.
Template: protocols/kaplan_meier.toml.

Leakage (the template's `leakage` text, verbatim):
Each hospital learns nothing but its own data: it sees only random-looking shares of the
other hospitals' counts and learns no joint count. The coordinator (and the analyst)
learns, for each group, the first grid point whose joint number at risk is below the
threshold, and only before it the number at risk and the number of events at each point:
a point is released only if it and every earlier point of its group reach the threshold,
decided inside MPC whatever the hospitals input, so the released points of a group are a
prefix of the grid and everything from the first point below the threshold on is
suppressed and never revealed to anyone. With strata, each group and stratum is its own
curve under this rule and the run releases no total over the strata, but a run without
strata on the same cohort does: their difference gives the counts of the strata
suppressed in this one (see the combination of releases below). The log-rank test is
summed over the strata. The number of events at a released point may be below the
threshold: this is an explicit exception to the small-cell rule, as in every published
Kaplan-Meier table (the survival curve cannot be drawn without it). The sequence of
released numbers at risk also reveals, per interval between two released points, the
number of patients censored (at risk at the first, minus events, minus at risk at the
next), which may be small too. The left-out count is released only if it reaches the
threshold. A group's curve is suppressed whole when its patients in the cohort (usable
or not, as the plain count of the same cohort and group counts them) minus its number at
risk at time 0 is between 1 and the threshold less 1, decided inside MPC: that
difference (the group's patients left out) would otherwise follow from the plain count,
another allowed query; the suppression tells only that it is small. The cohort's total
minus the released numbers at risk at time 0 still gives the left-out patients and those
of the suppressed curves together, as a count's total minus its released cells does. No
hospital's own counts and no single patient's dates are revealed. Released counts can be
combined with other releases: two queries whose cohorts differ by one patient differ in
the numbers at risk up to that patient's time and in one event or censoring count, which
gives that patient's rounded time and whether the event happened; in an exact run
(without epsilon), only the threshold on the numbers at risk, the coarseness of the grid
and each hospital's approval of this template limit that. With epsilon, the run is
differentially private (distributed discrete Gaussian mechanism) and none of the exact
comparisons above is made: each hospital inputs, per curve and grid point, its events
and its censored patients, per curve its patients followed beyond the horizon, and its
left-out count (each patient in one cell, so the L2 sensitivity of all the cells
together is 1, and they spend the query's whole rho); each hospital draws its own share
of integer noise per cell with a cryptographically secure exact sampler and inputs it
secret-shared, the sum of all shares is added to each cell inside the secure
computation, the numbers at risk are formed there as sums of the noisy cells, and only
noisy numbers are compared with the threshold (the same prefix rule) and opened, so no
one learns a noiseless count or the total noise. The noise is calibrated so that the
guarantee holds against t colluding hospitals that subtract their own shares (t is the
backend's collusion threshold: (n-1)//2 with MPyC, n-1 with CrypTen): each hospital's
share carries 1/(n-t) of the noise variance the guarantee needs, so the released noise
variance is n/(n-t) times a trusted curator's. A patient is assumed to be counted at one
hospital. The released result states the noise's standard deviation, t, epsilon, delta
(1e-6) and the zero-concentrated DP rho the query spends; each hospital's ledger charges
that rho to the analyst's budget and to its total over all analysts, which bounds what
all of an analyst's differentially private releases, including pairs of queries whose
cohorts differ by one patient, reveal together; exact runs are not covered by it.
"""

from smpc_ehr.analyses.statistics.kaplan_meier.analysis import KaplanMeierAnalysis

ANALYSIS = KaplanMeierAnalysis()
