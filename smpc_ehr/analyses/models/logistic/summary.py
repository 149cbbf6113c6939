"""The model summary as statsmodels' `Logit.summary()` prints it: the number of events,
the log-likelihood at the estimate and of the intercept-only model, the likelihood-ratio
test against it, McFadden's pseudo-R2, AIC and BIC, and the number of patients left out
for missing values.

Released to the coordinator in an exact run (`count_secrets`, `log_likelihood_secret`):
- the number of events, the sum of the parties' counts of training rows with the
  outcome (already checked to reach the threshold, with the non-events, by the
  group-size rule); with N it gives the null log-likelihood exactly;
- the number of cohort patients left out for a missing outcome or feature, opened only
  if it reaches the small-cell threshold (compared inside MPC; else null, "<T");
- in modes "iterates", "pooled" and "bohning" the log-likelihood at the final
  coefficients: each party's own sum at the coefficients every party knows, summed
  inside MPC. Each party's input is rounded to 2^-f, so the opened sum is within
  P 2^-(f+1) (P parties) of the sum of the exact local values, plus 2^-(f+1) for the
  output grid. Mode "full" never shows the parties the coefficients:
  the log-likelihood would need a secure logarithm per row, so it is not computed and
  the statistics built on it are reported as not available.
With epsilon nothing of this is released (each would be a value without noise).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats

from smpc_ehr.analyses.base import NamedSecrets, Output, Params
from smpc_ehr.analyses.common.left_out import LEFT_OUT_OUTPUTS, decode_left_out, left_out_secrets
from smpc_ehr.analyses.common.moments import party_arrays
from smpc_ehr.analyses.common.variables import category_levels
from smpc_ehr.securemath.ops import Secret, SecureOps

EVENTS_GROUP = 1
"""The events' column in `data.revealed_groups` (all rows, events, non-events, ...)."""
NOT_IN_FULL_MODE = (
    'not available in mode "full": the coefficients stay secret, and the '
    "log-likelihood would need a secure logarithm for every patient"
)
NOT_WITH_EPSILON = (
    "not released with epsilon: the number of events, the number left out and the "
    "log-likelihood would be values without noise"
)
SUMMARY_KEYS = (
    "log_likelihood",
    "null_log_likelihood",
    "lr_chi2",
    "lr_df",
    "lr_p",
    "pseudo_r2",
    "aic",
    "bic",
)
"""The statistics built on the log-likelihood (null where it is not available)."""


def summary_outputs(with_loglik: bool) -> tuple[Output, ...]:
    """The events, whether the left-out count is released and the count (0 if not), and
    (modes other than "full") the log-likelihood at the final coefficients."""
    return (
        Output("events", (1,)),
        *LEFT_OUT_OUTPUTS,
        *((Output("log_likelihood", (1,)),) if with_loglik else ()),
    )


def local_log_likelihood(z: np.ndarray, y: np.ndarray, beta: np.ndarray) -> float:
    """This party's log-likelihood sum of y u - log(1 + e^u) at u = z beta (the data's
    own, without the L2 penalty)."""
    u = z @ beta
    return float(np.sum(y * u - np.logaddexp(0.0, u)))


def count_secrets(ops: SecureOps, counts: Secret, left_out: int, threshold: int) -> NamedSecrets:
    """The events and the left-out count of `summary_outputs`, from the secret group
    counts (P x groups, `revealed_groups`) and this party's left-out count. Formed
    beside the group-size check, before the fit: with MPyC its comparison then runs
    alongside the check's and the Newton steps instead of adding rounds at the end."""
    return {
        "events": ops.sum(counts[:, EVENTS_GROUP : EVENTS_GROUP + 1], axis=0),
        **left_out_secrets(ops, left_out, threshold),
    }


def log_likelihood_secret(ops: SecureOps, log_likelihood: float) -> NamedSecrets:
    """The joint log-likelihood at the final coefficients: the parties' own sums added."""
    total = ops.sum(party_arrays(ops, np.array([log_likelihood])), axis=0)
    return {"log_likelihood": total}


def reference_levels(params: Params) -> dict[str, str]:
    """Each categorical feature's reference level (its first, public: no column)."""
    return {v: category_levels(v, params)[0] for v in params.get("categorical") or ()}


def null_log_likelihood(n: int, events: int) -> float:
    """The intercept-only model's maximum log-likelihood: e log(e/N) + (N-e) log(1-e/N)."""
    rest = n - events
    return sum(c * math.log(c / n) for c in (events, rest) if c > 0)


def decode_summary(
    opened: Mapping[str, np.ndarray], n: int, features: Sequence[str], private: bool, full: bool
) -> dict[str, Any]:
    """The summary's values by name: counts, log-likelihoods and the statistics from
    them as statsmodels computes them (llf, llnull, llr, llr_pvalue, prsquared, aic,
    bic); null where not released, with `summary_note` saying why."""
    empty: dict[str, Any] = dict.fromkeys(SUMMARY_KEYS)
    if private:
        return {"events": None, "left_out": None, **empty, "summary_note": NOT_WITH_EPSILON}
    events = round(opened["events"].item())
    summary: dict[str, Any] = {
        "events": events,
        "left_out": decode_left_out(opened),
        **empty,
        "null_log_likelihood": null_log_likelihood(n, events),
        "summary_note": NOT_IN_FULL_MODE if full else None,
    }
    if full:
        return summary
    llf, llnull = float(opened["log_likelihood"].item()), summary["null_log_likelihood"]
    k, d = len(features) + 1, len(features)
    chi2 = 2.0 * (llf - llnull)
    summary.update(
        {
            "log_likelihood": llf,
            "lr_chi2": chi2,
            "lr_df": d,
            "lr_p": float(stats.chi2.sf(chi2, d)) if d else None,
            "pseudo_r2": 1.0 - llf / llnull if llnull < 0 else None,
            "aic": -2.0 * llf + 2.0 * k,
            "bic": -2.0 * llf + math.log(n) * k,
        }
    )
    return summary
