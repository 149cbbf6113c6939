"""Joint k-means clustering of patients by Lloyd's algorithm, in mode "iterates" (the
parties see the centroid iterates) or "full" (all inside MPC, CrypTen).
Template: protocols/kmeans.toml.

Leakage (the template's `leakage` text, verbatim):
Each hospital learns whether the other hospitals' patients could fill k clusters of the
small-cell threshold, the number of patients used (N), the features' joint means and
standard deviations (with standardize = yes), every iterate of the centroids of every
restart, after each step whether any patient changed cluster, and which restart won. A
centroid iterate is shown to the hospitals only if, decided inside secure computation,
every cluster holds at least the threshold of patients of the other hospitals (for every
hospital); otherwise the job is refused at that step, naming no hospital and no cluster,
and nothing is released (an empty cluster is refused too; it is not re-seeded). A
hospital never sees another hospital's counts, sums or rows, nor a cluster's joint size
or inertia; it may keep its own patients' cluster labels, which are never sent. The
coordinator (and the analyst) learns, per cluster of at least the threshold of patients,
its size, centroid and profile means (a profile mean only if at least the threshold of
the cluster's patients have the variable and, for a 0/1 variable, only if its ones and
its zeros in the cluster each reach the threshold); in mode "iterates" a cluster in
which a 0/1 feature has fewer than the threshold of ones or of zeros is hidden like a
small one (its centroid times its size would give them). If a cluster is smaller, it is
hidden, the smallest other cluster is hidden too, and N and the joint inertia are
withheld, so that no hidden size follows from the released ones; the analyst sees which
clusters are hidden, not which is the small one. Also released: the number of patients
left out for a missing feature (if at least the threshold), the iteration count, and in
progress notes the step number; nothing per hospital. If the job fails or is refused,
nothing is released to the coordinator. With mode = full (crypten) the rows are
secret-shared and the hospitals learn only each hospital's row count rounded up to a
multiple of 100, whether N reaches k times the threshold, whether a feature is constant,
for each feature the power of two just above the largest absolute value of any patient
and the power of two within a factor of two of its joint standard deviation (which the
coordinator learns too) and, per step, whether it was the last; the coordinator's
release follows the same rule, with the number of times a cluster was empty (withheld
with N). What several releases reveal in combination (for example with a summary of the
same cohort) is not covered.

Not covered: what the iterates reveal about the joint data beyond the final centroids
(a deterministic function of the pooled data and the seed), and what several releases
reveal in combination (differencing across cohorts or with other analyses; e.g. N +
missing is the cohort's size, which a count may release).
"""

from smpc_ehr.analyses.models.kmeans.analysis import KMeansAnalysis

ANALYSIS = KMeansAnalysis()
