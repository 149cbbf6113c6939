"""Joint histogram of a numeric variable over given bin edges, with small-cell
suppression in MPC.
Template: protocols/histogram.toml.

Leakage (the template's `leakage` text, verbatim):
Each hospital learns nothing but its own data: it sees only random-looking shares of
the other hospitals' counts and learns no joint count. The coordinator (and the
analyst) learns, for each bin and for the outside and missing cells, whether the count
over all hospitals reaches the threshold, and the count only if it does; a cell below
the threshold is reported as suppressed and its value is never revealed to anyone. No
total is released (it would give a single suppressed cell away), and no single
patient's value, minimum or maximum, and no hospital's own count is revealed.
Released counts can be combined with other releases: the joint count of the same
cohort minus the released cells gives the suppressed ones, and histograms with
slightly different edges can be differenced; the threshold and each hospital's
approval of this template limit that.

Not covered: what releases reveal in combination. A suppressed cell can be recovered
by differencing: the joint count of the same cohort (the count analysis) minus this
histogram's released cells is the sum of its suppressed cells, and two histograms
whose edges differ slightly give the count between the differing edges. Only the
threshold and each hospital's approval of the template limit that today.
"""

from smpc_ehr.analyses.statistics.histogram.analysis import HistogramAnalysis

ANALYSIS = HistogramAnalysis()
