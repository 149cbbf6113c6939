"""Joint counts of distinct patients in a cohort (rare-disease counts first), with
small-cell suppression decided inside MPC.
Template: protocols/rare_disease_count.toml.

Leakage (the template's `leakage` text, verbatim):
Each hospital learns nothing but its own local count, which it computes itself; it
sees only random-looking shares of the other hospitals' counts and learns nothing
about the total. The coordinator (and the analyst it answers) learns, for each cell,
whether the total over all hospitals reaches the small-cell threshold, and the total
only if it does; a total below the threshold is reported as "suppressed" and its
value is never revealed to anyone. No one learns any single hospital's count. The
released totals themselves can reveal information (for example when queries with
slightly different parameters are compared); this version bounds that only by the
small-cell threshold: each hospital's approval of this template is the control.

Not covered: what released totals reveal in combination (differences between
overlapping queries, or a released total minus the counts n-1 colluding hospitals
know); only the threshold and each hospital's template approval limit that today.
"""

from smpc_ehr.analyses.statistics.count.analysis import CountAnalysis

ANALYSIS = CountAnalysis()
