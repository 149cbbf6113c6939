"""Public clipping bounds for the numeric variables of a differentially private run.

Noise is sized to the most one patient can change a released sum (its sensitivity),
so every numeric value that enters a noisy sum must lie within public bounds. A
template with a DP variant takes the parameter `bounds` (type `numbers`): a low and
a high for each numeric variable, in the order the variables are named (for
`variables=bmi,sbp`: `bounds=15,60,80,220`). Each party clips its own values into
[low, high] in plaintext before anything is input (a value outside is moved to the
nearest bound, not dropped, so the cohort's counts do not depend on the bounds);
missing values stay missing. Exact runs ignore the bounds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from smpc_ehr.analyses.base import Params
from smpc_ehr.errors import TemplateError

PARAMETER = "bounds"


def clip_bounds(params: Params, names: Sequence[str]) -> dict[str, tuple[float, float]]:
    """Each variable's (low, high) from `bounds`; TemplateError naming what is wrong
    when a DP run lacks them or they do not fit the variables."""
    raw = params.get(PARAMETER)
    if not raw:
        raise TemplateError(
            f"a differentially private run needs '{PARAMETER}': a low and a high for each "
            f"of {', '.join(names)}, in that order (e.g. {PARAMETER}=15,60 for one variable)"
        )
    if len(raw) != 2 * len(names):
        raise TemplateError(
            f"'{PARAMETER}' has {len(raw)} numbers; {len(names)} variable(s) "
            f"({', '.join(names)}) need {2 * len(names)}: a low and a high for each"
        )
    bounds: dict[str, tuple[float, float]] = {}
    for i, name in enumerate(names):
        low, high = float(raw[2 * i]), float(raw[2 * i + 1])
        if not low < high:
            raise TemplateError(f"'{PARAMETER}' for {name}: low {low:g} is not below high {high:g}")
        bounds[name] = (low, high)
    return bounds


def clip(values: np.ndarray, bounds: tuple[float, float]) -> np.ndarray:
    """Values moved into [low, high]; NaN (missing) stays NaN."""
    low, high = bounds
    return np.clip(values, low, high)
