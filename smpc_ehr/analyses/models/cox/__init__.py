"""Joint Cox proportional hazards regression (Breslow's ties) on the Kaplan-Meier time
grid, by Newton-Raphson with the iterates revealed to the parties (mode "iterates"),
optionally with a baseline hazard per hospital. Template: protocols/cox_regression.toml.

Leakage (the template's `leakage` text, verbatim):
Each hospital learns nothing of the other hospitals' rows. The job runs only if, for
every hospital, the patients of the other hospitals reach the small-cell threshold, in
all, among those with and without the event, in each level of a categorical feature and
among the ones and the zeros of a 0/1 feature (decided inside MPC; each hospital learns
only that this holds, and a refusal names no hospital); a hospital with few or no
patients in the cohort takes part like any other. Each hospital then learns the number
of patients used (N), the number of events (D), the joint means and standard deviations
of the features, the power of two just above the trace of the joint information matrix
per event at the start, whether the relative hazards of each iterate fit the fixed-point
range, and every iterate of the (standardised) coefficients; it never sees another
hospital's risk set sums, score, information, counts or rows, nor the joint ones. With
stratify = "hospital" the same holds, the score and information added being each
hospital's own. The coordinator (and the analyst) learns the final coefficients, their
covariance matrix, N, D, the number of iterations (progress notes carry only the
iteration counter) and the features' joint means and standard deviations, and with
concordance = "yes" (while D x N is below 2^29) Harrell's concordance index C, computed
inside MPC from counts pooled there (per grid point and public bin of width 0.02 of the
linear predictor at the final coefficients: events, and patients followed longer in all
and in lower bins; with stratify = "hospital" each hospital's own numbers of concordant
and comparable pairs, only added), of which only C is opened; the number of cohort
patients left out (no follow-up time or a missing feature), only if it reaches the
threshold (compared inside MPC); nothing per hospital, no number at risk and no baseline
hazard. With too few patients, a constant feature, relative hazards beyond the fixed-
point range, a monotone likelihood or no convergence, the job fails and nothing is
released to the coordinator. Released models can be combined with other releases; only
the threshold and each hospital's approval of this template bound that (there is no
differentially private variant of this analysis).

Not covered: the events within one level of a categorical feature are not checked (the
coefficient reveals them only approximately); what the iterates reveal about the joint
data beyond the final model (they are a deterministic function of the pooled data,
like the model itself); what releases reveal in combination.
"""

from smpc_ehr.analyses.models.cox.analysis import CoxRegressionAnalysis

ANALYSIS = CoxRegressionAnalysis()
