"""Joint logistic regression by Newton-Raphson, in mode "iterates" (the parties see the
iterates), "pooled" (they also see the joint gradient and Hessian of each step) or "full"
(the whole fit inside MPC), and with `epsilon` differentially private
(noisy Newton-Raphson, dp.py). Template: protocols/logistic_regression.toml.

Leakage (the template's `leakage` text, verbatim):
Mode "iterates": the job runs only if, for every hospital, the patients of the other
hospitals reach the small-cell threshold, in all and among those with and without the
outcome and in each level of a categorical feature (decided inside MPC; each hospital
learns only that this holds, and a refusal names no hospital); a hospital with few or no
patients in the cohort takes part like any other. Each hospital then learns the number
of patients used (N), the joint means and standard deviations of the features, and every
iterate of the (standardised) coefficients; it never sees another hospital's gradient,
Hessian, counts or rows, nor the joint gradient or Hessian.
Mode "pooled" (never the default) makes the same check first; then each hospital learns
N, the joint means and standard deviations of the features, and in each Newton step the
joint gradient and Hessian of the log-likelihood (summed over all hospitals, never one
hospital's) and the next iterate computed from them; at the start the joint Hessian is
X'X/4, which gives N and the joint sums and cross-products of the (standardised)
features, hence with the means and standard deviations those of the features themselves,
and the joint gradient at the start gives the number of patients with the outcome and the
joint sums of the features among them. This is more than mode "iterates" reveals, and
less than GLORE or DataSHIELD's ds.glm, which reveal each hospital's own gradient and
Hessian; it never sees another hospital's gradient, Hessian, counts or rows.
Mode "bohning" (never the default) makes the same check; then each hospital learns N, the
joint means and standard deviations of the features, and every iterate of the
(standardised) coefficients, typically ten times as many as in mode "iterates"
(convergence is linear): each step is the inverse of the joint Hessian at the start
(X'X/4) times the joint gradient at the last iterate, so over the steps each hospital
sees that one fixed linear map of the joint gradient at every iterate; it never sees
another hospital's gradient, Hessian, counts or rows. Mode "full": each
hospital learns the other hospitals' numbers of rows rounded up to a multiple of 100, whether N
reaches the threshold, whether a feature is constant, for each feature the power of two
just above the largest absolute value of any patient and the power of two within a
factor of two of its joint standard deviation, and per iteration only whether it was the
last and whether the fit diverges; no iterate. The coordinator (and the analyst) learns
the final coefficients, their covariance matrix, N and the number of iterations
(progress notes carry only the iteration counter), in modes "iterates", "pooled" and
"bohning" also the features' joint means and standard deviations, in mode "full" each
feature's standard deviation within a factor of two; the number of patients with the
outcome among the N (the intercept-only model's log-likelihood follows from it), the
number of cohort patients left out for a missing outcome or feature only if it reaches
the small-cell threshold (compared inside MPC; else shown as below it), and in modes
"iterates", "pooled" and "bohning" the joint log-likelihood at the final coefficients
(the sum of the hospitals' own sums, formed inside MPC; the likelihood-ratio test,
pseudo-R2, AIC and BIC follow from it; mode "full" does not compute it); with a test
fraction the evaluation aggregates (each count, and each tenth's mean predicted
probability, only from at least the small-cell threshold of patients; the confusion
matrix is released whole or not at all, and beside a hidden tenth the smallest other
tenth is hidden too, so no hidden count follows from released ones); nothing per
hospital. With too few patients, or a constant feature, or (mode
"full") an L2 penalty too strong for a feature's scale, or separation, or no
convergence, the job fails and nothing is released to the coordinator. Released models
can be combined with other releases; an exact run (without epsilon) bounds that only by
the threshold and each hospital's approval. With epsilon (mode "iterates", no test
fraction), the fit is differentially private (noisy Newton-Raphson: Avella-Medina,
Bradshaw and Loh, Annals of Statistics 2023; distributed discrete Gaussian mechanism)
and none of the checks on exact counts above is made: each hospital clips every numeric
feature to its public bounds and maps it onto [-1, 1] (a categorical feature's 0/1
columns likewise), and learns only a noisy N and, in each of the dp_steps Newton steps
(a number fixed in advance, every step charged), the noisy joint gradient and Hessian of
the log-likelihood at the current coefficients and the next coefficients computed from
them; the job is refused, releasing nothing more, if the noisy N is below the small-cell
threshold. The coordinator (and the analyst) learns the noisy N, the number of steps,
the final coefficients, their covariance and how many eigenvalues of the last noisy
Hessian were raised to its public floor; the number with the outcome, the number left
out and the log-likelihood are not released with epsilon. Each hospital draws its own
share of noise for every noisy value with a cryptographically secure exact sampler and
inputs it secret-shared; the sum of all shares is added inside the secure computation
before
anything is compared or opened, so no one learns a noiseless sum or the total noise. The
noise is calibrated so that the guarantee holds against t colluding hospitals that
subtract their own shares (t is the backend's collusion threshold: (n-1)//2 with MPyC,
n-1 with CrypTen): each hospital's share carries 1/(n-t) of the noise variance the
guarantee needs, so the released noise variance is n/(n-t) times a trusted curator's. A
patient is assumed to be counted at one hospital; with k coefficients, one patient
changes the gradient by at most sqrt(k) and the Hessian's upper triangle by
sqrt(k(k+1)/2)/4 in L2 norm (plus a fixed-point rounding slack). The job spends the rho
of zero-concentrated DP that its epsilon allows at delta 1e-6 (rho adds up exactly over
jobs): 5% on N, the rest evenly over the steps, two thirds of each to the gradient and
one third to the Hessian; it covers everything the job releases, to the hospitals and to
the coordinator. The released result states the noise's standard deviations, t, epsilon,
delta and rho.

Not covered: the events within one level of a categorical feature are not checked (with
numeric features in the model its coefficient reveals them only approximately); what the
iterates reveal about the joint data beyond the final model (they are a deterministic
function of the pooled data, like the model itself); what releases reveal in combination
(exact runs; with epsilon the ledger composes them). With epsilon: a patient recorded at
several hospitals (the sensitivities assume one); the float64 rounding of each
hospital's local sums is assumed to stay within the sensitivity's slack (dp.py).
"""

from smpc_ehr.analyses.models.logistic.analysis import LogisticRegressionAnalysis

ANALYSIS = LogisticRegressionAnalysis()
