"""A logistic regression's data at one party: its complete cases of the outcome and the
features (numeric, and categorical ones one-hot against their first level), split at
random into training and test rows. Shared by both modes (analysis.py, full.py)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from smpc_ehr.analyses.base import Params
from smpc_ehr.analyses.common.moments import local_binary
from smpc_ehr.analyses.common.variables import (
    FULL_MODE_MAX_ABS,
    MAX_ABS_VALUE,
    Cohort,
    category_index,
    category_levels,
    numeric_values,
    select_cohort,
    value_limit,
)
from smpc_ehr.data.records import PartyData


@dataclass(frozen=True)
class Design:
    """A party's complete cases: raw features (n x d) and the 0/1 outcome, for training
    and (with a test fraction) for evaluation; and how many cohort patients were left
    out for a missing outcome or feature."""

    x: np.ndarray
    y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    left_out: int = 0


def feature_names(params: Params) -> list[str]:
    """The model's columns after the intercept: the numeric features, then per
    categorical variable one 0/1 column per level but the first (the reference),
    named "variable=level" (levels are public: `variables.category_levels`)."""
    names = list(params["features"])
    for variable in params.get("categorical") or ():
        names += [f"{variable}={level}" for level in category_levels(variable, params)[1:]]
    return names


def _columns(data: PartyData, params: Params, cohort: Cohort) -> np.ndarray:
    """The cohort's feature matrix in `feature_names` order (NaN = missing). A DP run
    takes numeric features of any size: it clips them into their bounds (dp.py)."""
    limit = value_limit(params, FULL_MODE_MAX_ABS if params["mode"] == "full" else MAX_ABS_VALUE)
    columns = [numeric_values(data, f, cohort, limit) for f in params["features"]]
    for variable in params.get("categorical") or ():
        index = category_index(data, variable, cohort, params)
        levels = len(category_levels(variable, params))
        columns += [np.where(index < 0, np.nan, index == level) for level in range(1, levels)]
    return np.column_stack(columns)


def local_design(data: PartyData, params: Params) -> Design:
    """This party's rows with the outcome and every feature present, split at random
    (numpy's generator from `seed`, over all its patients, so the split of a patient
    does not depend on the cohort) into training and test rows."""
    cohort = select_cohort(data, params)
    outcome = category_index(data, params["outcome"], cohort, params)
    x = _columns(data, params, cohort)
    keep = (outcome >= 0) & ~np.isnan(x).any(axis=1)
    x, y = x[keep], outcome[keep].astype(float)
    fraction = float(params["test_fraction"])
    if fraction > 0:  # one uniform per patient of the party, so the split is stable
        draw = np.random.default_rng(int(params["seed"])).random(data.n_patients)
        test = draw.take(cohort.members)[keep] < fraction
    else:
        test = np.zeros(len(y), dtype=bool)
    train, held_out = np.ascontiguousarray(x[~test]), np.ascontiguousarray(x[test])
    return Design(train, y[~test], held_out, y[test], int(np.sum(~keep)))


SHORTFALL = (
    "too few patients have the outcome and every feature (or too few of them have the "
    "outcome, lack it, are in some level of a categorical feature, or have a 0/1 "
    "feature's ones or zeros)"
)
"""The refusal when `revealed_groups` fall short of the group-size rule."""


def revealed_groups(design: Design, params: Params) -> np.ndarray:
    """This party's training rows in each group whose size the fit reveals exactly to
    the parties: all rows, the events and the non-events (the first Newton step's
    intercept is 4 (events / N - 1/2)), and each level of each categorical feature,
    the reference level too (the joint mean of a 0/1 column is its count / N), and the
    ones and the zeros of each numeric feature that is 0/1 (likewise)."""
    x, y = design.x, design.y
    sizes = [len(y), int(np.sum(y == 1)), int(np.sum(y == 0))]
    at = len(params["features"])
    for column in x[:, :at].T:  # a 0/1 feature's joint mean times N is its count of ones
        binary, ones = local_binary(column)
        # A hospital whose column is not 0/1 makes the joint mean no count: it counts
        # all its rows for both, which constrains nothing.
        sizes += [ones, len(y) - ones] if binary else [len(y), len(y)]
    for variable in params.get("categorical") or ():
        block = x[:, at : at + len(category_levels(variable, params)) - 1] == 1
        sizes += [int(np.sum(~block.any(axis=1))), *(int(n) for n in block.sum(axis=0))]
        at += block.shape[1]
    return np.array(sizes, dtype=float)
