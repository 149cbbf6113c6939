"""Joint logistic regression by Newton-Raphson, in mode "iterates" (the parties see the
iterates) or "full" (the whole fit inside MPC). Template: protocols/logistic_regression.toml.

Leakage (the template's `leakage` text, verbatim):
Mode "iterates": the job runs only if, for every hospital, the patients of the other
hospitals reach the small-cell threshold, in all and among those with and without the
outcome and in each level of a categorical feature (decided inside MPC; each hospital
learns only that this holds, and a refusal names no hospital); a hospital with few or no
patients in the cohort takes part like any other. Each hospital then learns the number
of patients used (N), the joint means and standard deviations of the features, and every
iterate of the (standardised) coefficients; it never sees another hospital's gradient,
Hessian, counts or rows, nor the joint gradient or Hessian. Mode "full": each hospital
learns the other hospitals' numbers of rows rounded up to a multiple of 100, whether N
reaches the threshold, whether a feature is constant, for each feature the power of two
just above the largest absolute value of any patient and the power of two within a
factor of two of its joint standard deviation, and per iteration only whether it was the
last and whether the fit diverges; no iterate. The coordinator (and the analyst) learns
the final coefficients, their covariance matrix, N and the number of iterations
(progress notes carry only the iteration counter), in mode "iterates" also the features'
joint means and standard deviations, in mode "full" each feature's standard deviation
within a factor of two; with a test fraction the evaluation aggregates (each count, and
each tenth's mean predicted probability, only from at least the small-cell threshold of
patients; the confusion matrix is released whole or not at all, and beside a hidden
tenth the smallest other tenth is hidden too, so no hidden count follows from released
ones); nothing per hospital. With too few patients, or a constant feature, or (mode
"full") an L2 penalty too strong for a feature's scale, or separation, or no
convergence, the job fails and nothing is released to the coordinator. Released models
can be combined with other releases; the threshold and each hospital's approval limit
that.

Not covered: the events within one level of a categorical feature are not checked (with
numeric features in the model its coefficient reveals them only approximately); what the
iterates reveal about the joint data beyond the final model (they are a deterministic
function of the pooled data, like the model itself); what releases reveal in combination.
"""

from smpc_ehr.analyses.models.logistic.analysis import LogisticRegressionAnalysis

ANALYSIS = LogisticRegressionAnalysis()
