"""Joint k-means clustering of patients by Lloyd's algorithm, in mode "iterates" (the
parties see the centroid iterates), "pooled" (they also see each step's joint cluster
sizes and sums: faster, explicit, never the default) or "full" (all inside MPC,
CrypTen); with `epsilon`,
differentially private Lloyd steps with noisy counts and sums (dp.py).
Template: protocols/kmeans.toml.

Leakage (the template's `leakage` text, verbatim):
Each hospital learns whether the other hospitals' patients could fill k clusters of the
small-cell threshold, the number of patients used (N), the features' joint means and
standard deviations (with standardize = yes), every iterate of the centroids of every
restart, after each step whether any patient changed cluster, and which restart won.
With mode = pooled (chosen explicitly, never the default), they learn besides, at every
step of every restart, each cluster's joint size (its number of patients at all
hospitals together) and the joint sums of its patients' clustered features (the size
times the centroid, which they see anyway); every hospital divides them itself. A
centroid iterate (in mode pooled, a step's sizes and sums) is shown to the hospitals
only if, decided inside secure computation, every cluster holds at least the threshold
of patients of the other hospitals (for every hospital); otherwise the job is refused at
that step, naming no hospital and no cluster, and nothing is released (an empty cluster
is refused too; it is not re-seeded). A hospital never sees another hospital's counts,
sums or rows, nor (except in mode pooled) a cluster's joint size, nor its inertia; it
may keep its own patients' cluster labels, which are never sent. The coordinator (and
the analyst) learns, per cluster of at least the threshold of patients, its size,
centroid and profile means (a profile mean only if at least the threshold of the
cluster's patients have the variable and, for a 0/1 variable, only if its ones and its
zeros in the cluster each reach the threshold); in modes "iterates" and "pooled" a
cluster in which a 0/1 feature has fewer than the threshold of ones or of zeros is
hidden like a small one (its centroid times its size would give them). If a cluster is
smaller, it is
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
same cohort) is not covered by an exact run (without epsilon). With epsilon (mode
iterates only), the run is differentially private (distributed discrete Gaussian
mechanism) and the rules above give way to these: each feature is clipped into its
public bounds and mapped by the bounds' public affine map onto [-1, 1] (no joint means
or standard deviations are computed), the initial centroids are init or drawn from the
seed in the bounds box, and exactly dp_steps Lloyd steps are run (no convergence test,
no restarts, no group-size check). In each step each hospital inputs, per cluster, the
number of its patients nearest to the current centroids and the sums of their mapped
features; inside the secure computation these are summed and noise is added, and only
the noisy counts and sums are opened to the hospitals, which compute the next centroids
from them (a cluster whose noisy count is below the threshold keeps its centroid). Each
hospital draws its own share of the noise with a cryptographically secure exact sampler
and inputs it secret-shared, so no one learns a noiseless count or sum or the total
noise. The noise is calibrated so that the guarantee holds against t colluding hospitals
that subtract their own shares (t is the backend's collusion threshold: (n-1)//2 with
MPyC, n-1 with CrypTen): each hospital's share carries 1/(n-t) of the noise variance the
guarantee needs, so the released noise variance is n/(n-t) times a trusted curator's. A
patient is assumed to be counted at one hospital; in a step they change one cluster's
count by 1 and its sums by their clipped, mapped features, so the L2 sensitivity of a
step is the square root of 1 + d for d features, and every one of the dp_steps steps is
charged: the zero-concentrated DP rho of the job's epsilon (at delta 1e-6) is split
equally among them and adds up exactly. The hospitals learn every step's noisy counts
and sums; the coordinator (and the analyst) learns the final centroids and, as sizes,
the last step's noisy counts, both only for clusters whose noisy size reaches the
threshold; no N, inertia or left-out count, and no profiles. The released result states
the noise's standard deviation, t, epsilon, delta (1e-6) and the rho the query spends,
which each hospital's budget is charged; the budget covers everything the job opens, to
the hospitals and to the coordinator. Combinations with other releases are bounded by
the privacy budget, which the hospitals' ledgers enforce.

Not covered: in an exact run, what the iterates reveal about the joint data beyond the
final centroids (a deterministic function of the pooled data and the seed), and what
several releases reveal in combination (differencing across cohorts or with other
analyses; e.g. N + missing is the cohort's size, which a count may release). With
epsilon, everything the job opens is differentially private (dp.py) and combinations
are bounded by the privacy budget, which the hospitals' ledgers enforce (not this
package).
"""

from smpc_ehr.analyses.models.kmeans.analysis import KMeansAnalysis

ANALYSIS = KMeansAnalysis()
