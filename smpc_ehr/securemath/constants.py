"""The one set of secure-math constants (bit widths of counts, Newton step counts)."""

COUNT_BITS = 30
"""Counts that are divided by (`division.divide_by_counts`, `fractions_of_total`), and
sums of them, stay below 2^COUNT_BITS (a billion); so do small-cell thresholds."""
COUNT_INPUT_BITS = 32
"""Bit length of the secret integers that count tables are input and released as
(totals below 2^31 patients). Not COUNT_BITS: that one bounds the fixed-point values
division works on (below MPyC's fixed-point limit of 2^31, with the room its search
for the leading bit needs); this one the exact secret integers of released counts."""
RECIPROCAL_STEPS = 3
"""Newton steps for 1/a on [1, 2]: relative error 1/17 -> 3.5e-3 -> 1.2e-5 -> 1.4e-10."""

# Newton-Schulz steps for the logistic regression's Hessian (`linalg.inverse_spd`,
# `linalg.solve_refined`), started from (4/k) I or from the last inverse.
FIRST_INVERSE_STEPS = 16
"""Newton-Schulz steps for the first Hessian from (4/k) I: full precision for condition
numbers up to about 10^3; worse-conditioned ones are finished by the steps that carry
the inverse from one Newton iteration to the next (each squares the remaining error)."""
NEW_HESSIAN_INVERSE_STEPS = 2
"""Newton-Schulz steps for the covariance: the inverse of a new Hessian (at the final
coefficients), started from the previous Hessian's inverse, which at convergence is
off by far less than 1e-3 (each step squares that; 5 until 2026-12: measured no
difference in the standard errors) (full mode's
SAME_HESSIAN_INVERSE_STEPS refine the inverse of the same Hessian, and need fewer)."""
UPDATE_STEPS = 2
"""Newton-Schulz steps that carry the last Hessian's inverse over to the next one (mode
"full"; mode "iterates" chooses them by the last step: analyses/common/newton.py)."""
REFINEMENT_STEPS = 1
"""Then H d = g is solved as d = X g, d <- d + X (g - H d): matrix-vector products
(k roundings each, not k^2), the error shrinking by |I - X H| per step; an inexact
step only slows Newton's convergence, it does not move the optimum (where g = 0)."""
SAME_HESSIAN_INVERSE_STEPS = 3
"""Newton-Schulz steps for the covariance: the last Hessian's inverse, already carried
over by UPDATE_STEPS, refined further (the iterates mode inverts a new Hessian at the
final coefficients, NEW_HESSIAN_INVERSE_STEPS)."""
