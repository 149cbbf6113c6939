"""Joint counts of distinct patients in a cohort (rare-disease counts first), with
small-cell suppression decided inside MPC; with `epsilon`, noisy (differentially
private) totals.
Template: protocols/rare_disease_count.toml.

Leakage (the template's `leakage` text, verbatim):
Each hospital learns nothing but its own local count, which it computes itself; it sees
only random-looking shares of the other hospitals' counts and learns nothing about the
total. The coordinator (and the analyst it answers) learns, for each cell, whether the
total over all hospitals reaches the small-cell threshold, and the total only if it
does; a total below the threshold is reported as "suppressed" and its value is never
revealed to anyone. No one learns any single hospital's count. The released totals
themselves can reveal information (for example when queries with slightly different
parameters are compared); an exact run (without epsilon) bounds that only by the
small-cell threshold: each hospital's approval of this template is the control. With epsilon,
every total is differentially private (distributed discrete Gaussian mechanism): each
hospital draws its own share of integer noise per cell with a cryptographically secure
exact sampler and inputs it secret-shared, and the sum of all shares is added to each
total inside the secure computation before the small-cell test, so only noisy totals are
compared with the threshold and opened, and no one learns a noiseless total or the total
noise. The noise is calibrated so that the guarantee holds against t colluding hospitals
that subtract their own shares (t is the backend's collusion threshold: (n-1)//2 with
MPyC, n-1 with CrypTen): each hospital's share carries 1/(n-t) of the noise variance the
guarantee needs, so the released noise variance is n/(n-t) times a trusted curator's. A
patient is assumed to be counted at one hospital (or at most max_sites, which multiplies
the noise) and in one cell, so the table's sensitivity is 1. The query spends the
zero-concentrated DP rho that epsilon allows at delta 1e-6; each hospital's ledger adds
up the rho of the queries it runs exactly and converts the total to epsilon at its
policy's delta for its budget, which covers what the released results say about its
patients. The released result states the noise's standard deviation, t, epsilon, delta
and rho.
With dedup = yes, each hospital inputs, secret-shared, values computed from the keyed
link tokens of its cohort's patients (HMAC-SHA256 of each link id with the linkage key
the hospitals share and the coordinator, dealer and analysts never hold: the
coefficients of a polynomial whose roots are its tokens and the powers of its tokens),
padded to dedup_bound, a constant of this template, and its count of cohort patients
without a link id: the only size the traffic shows is each hospital's padded bound.
Which tokens are equal is computed inside the secure computation and never opened: the
coordinator learns whether the number of distinct patients (in each cell, with by)
reaches the small-cell threshold and the number only if it does, and the same for the
number of patients seen at more than one hospital; no one learns which patients are
shared, or where. Because the plain count of the same cohort is another allowed query,
a distinct count is also suppressed when the plain count minus it (the records beyond
one per patient) is between 1 and the threshold less 1 in size, and the shared count
when that difference minus the shared count (the patients at three or more hospitals)
is: no subtraction of released numbers gives a small count; the suppression tells only
that such a difference is small. A hospital whose cohort has more linked patients than
the bound makes the job refused jointly, without its name: the refusal tells that some
hospital's cohort exceeds the bound, nothing more.

Not covered: in an exact run, what released totals reveal in combination (differences
between overlapping queries, or a released total minus the counts n-1 colluding
hospitals know); only the threshold and each hospital's template approval limit that.
With epsilon, combinations are bounded by the privacy budget, which the hospitals'
ledgers enforce (not this package).
"""

from smpc_ehr.analyses.statistics.count.analysis import CountAnalysis

ANALYSIS = CountAnalysis()
