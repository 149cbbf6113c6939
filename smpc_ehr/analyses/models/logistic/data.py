"""A logistic regression's data at one party: its complete cases of the outcome and the
features (numeric, and categorical ones one-hot against their first level), split at
random into training and test rows (the features: `common.features`). Shared by all
modes (analysis.py, full.py, dp.py)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from smpc_ehr.analyses.base import Params
from smpc_ehr.analyses.common.features import feature_columns, revealed_group_sizes
from smpc_ehr.analyses.common.variables import category_index, select_cohort
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


def local_design(data: PartyData, params: Params) -> Design:
    """This party's rows with the outcome and every feature present, split at random
    (numpy's generator from `seed`, over all its patients, so the split of a patient
    does not depend on the cohort) into training and test rows."""
    cohort = select_cohort(data, params)
    outcome = category_index(data, params["outcome"], cohort, params)
    x = feature_columns(data, params, cohort)
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
    the parties (`features.revealed_group_sizes`, the outcome's groups those of y)."""
    return revealed_group_sizes(design.x, design.y, params)
