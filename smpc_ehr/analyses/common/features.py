"""A model's features at one party: the numeric columns, then one 0/1 column per level
but the first (the reference) of each categorical variable, and the sizes of the groups
whose counts a fit reveals to the parties. Shared by the logistic and Cox regressions."""

from __future__ import annotations

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
    value_limit,
)
from smpc_ehr.data.records import PartyData


def feature_names(params: Params) -> list[str]:
    """The model's columns after the intercept: the numeric features, then per
    categorical variable one 0/1 column per level but the first (the reference),
    named "variable=level" (levels are public: `variables.category_levels`)."""
    names = list(params["features"])
    for variable in params.get("categorical") or ():
        names += [f"{variable}={level}" for level in category_levels(variable, params)[1:]]
    return names


def feature_columns(data: PartyData, params: Params, cohort: Cohort) -> np.ndarray:
    """The cohort's feature matrix in `feature_names` order (NaN = missing). A DP run
    takes numeric features of any size: it clips them into their bounds (the logistic
    regression's dp.py)."""
    limit = value_limit(params, FULL_MODE_MAX_ABS if params["mode"] == "full" else MAX_ABS_VALUE)
    columns = [numeric_values(data, f, cohort, limit) for f in params["features"]]
    for variable in params.get("categorical") or ():
        index = category_index(data, variable, cohort, params)
        levels = len(category_levels(variable, params))
        columns += [np.where(index < 0, np.nan, index == level) for level in range(1, levels)]
    return np.column_stack(columns)


def revealed_group_sizes(x: np.ndarray, y: np.ndarray, params: Params) -> np.ndarray:
    """This party's rows (features x, 0/1 outcome y) in each group whose size a fit
    reveals exactly to the parties: all rows, the events and the non-events (a logistic
    fit's first Newton step's intercept is 4 (events / N - 1/2); a Cox fit opens the
    number of events), and each level of each categorical feature,
    the reference level too (the joint mean of a 0/1 column is its count / N), and the
    ones and the zeros of each numeric feature that is 0/1 (likewise)."""
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
