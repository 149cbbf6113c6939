"""Public clipping bounds for the numeric variables of a differentially private run.

Noise is sized to the most one patient can change a released sum (its sensitivity),
so every numeric value that enters a noisy sum must lie within public bounds. A
template with a DP variant takes the parameter `bounds` (type `numbers`): a low and
a high for each numeric variable, in the order the variables are named (for
`variables=bmi,sbp`: `bounds=15,60,80,220`). Each party clips its own values into
[low, high] in plaintext before anything is input (a value outside is moved to the
nearest bound, not dropped, so the cohort's counts do not depend on the bounds);
missing values stay missing. Exact runs ignore the bounds.

`UnitMap` then maps each clipped value onto [-1, 1] by its bounds' affine map, so that
one patient moves a sum of mapped values by at most 1 whatever the variable's units
(the summary, t-test and correlation, logistic regression and k-means all use it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

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


V = TypeVar("V", float, np.ndarray)
"""One variable's bound (float) or one per column (an array, broadcast over rows)."""


@dataclass(frozen=True)
class UnitMap(Generic[V]):
    """The public affine map of [low, high] onto [-1, 1]: u = (clip(x) - centre) / half,
    centre = (low + high) / 2 and half = (high - low) / 2; for one variable (floats)
    or for the columns of rows (n x d, arrays of d)."""

    low: V
    high: V

    @staticmethod
    def of(bounds: Iterable[tuple[float, float]]) -> UnitMap[np.ndarray]:
        """The map of the columns whose (low, high) are `bounds`, in order."""
        low, high = np.array(list(bounds), dtype=float).reshape(-1, 2).T
        return UnitMap(low, high)

    @property
    def centre(self) -> V:
        return (self.low + self.high) / 2

    @property
    def half(self) -> V:
        return (self.high - self.low) / 2

    def to_unit(self, values: np.ndarray) -> np.ndarray:
        """Values clipped into the bounds, in half-widths from the centre, within
        [-1, 1] (clipped again after the division, against its rounding); NaN stays."""
        return np.clip((np.clip(values, self.low, self.high) - self.centre) / self.half, -1, 1)

    def to_original(self, units: np.ndarray) -> np.ndarray:
        """Mapped values back in the variables' own units."""
        return units * self.half + self.centre
