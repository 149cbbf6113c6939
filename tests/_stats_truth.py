"""Plaintext oracle for the statistical analyses: pandas, numpy and scipy on the pooled
files of all parties, independent of smpc_ehr (nothing of the package is imported).

Every function takes a pooled cohort frame (`cohort_frame`): one row per patient of
the cohort with the numeric columns as floats (NaN = missing), `age` in completed
years at `as_of`, `age_band` and, when `condition_codes` is given, `condition`
(1.0 / 0.0: has a condition row whose code starts with one of the codes).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from tests import _truth
from tests._truth import BANDS, SEXES, pooled

AS_OF = "2026-01-01"
BINARY = ("0", "1")


def _prefixes(codes: str | Sequence[str]) -> tuple[str, ...]:
    items = codes.split(",") if isinstance(codes, str) else list(codes)
    return tuple(c.strip().upper().rstrip("*").rstrip(".") for c in items if c.strip())


@functools.cache
def _pooled(data: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    return pooled(data)


def _having(patients: pd.DataFrame, conditions: pd.DataFrame, codes: str) -> pd.Series:
    """Per patient row: has a condition row with a code starting with one of `codes`."""
    hits = conditions[conditions["code"].str.startswith(_prefixes(codes))]
    keys = set(zip(hits["site"], hits["patient_id"], strict=True))
    return pd.Series(
        [(s, p) in keys for s, p in zip(patients["site"], patients["patient_id"], strict=True)],
        index=patients.index,
    )


def ages(birth_dates: pd.Series, as_of: str = AS_OF) -> pd.Series:
    """Completed years at `as_of` (tests/_truth.py's independent rule)."""
    return _truth.ages(birth_dates, as_of)


@functools.cache
def cohort_frame(
    data: Path,
    codes: str | None = None,
    sex: str | None = None,
    age: tuple[int, int] | None = None,
    condition_codes: str | None = None,
    as_of: str = AS_OF,
) -> pd.DataFrame:
    """The pooled cohort (all patients born by `as_of` unless filtered)."""
    patients, conditions = _pooled(data)
    frame = patients.reset_index(drop=True)
    frame = frame.assign(age=ages(frame["birth_date"], as_of))
    keep = frame["age"] >= 0
    if codes:
        keep &= _having(frame, conditions, codes)
    if sex is not None:
        keep &= frame["sex"] == sex
    if age is not None:
        keep &= (frame["age"] >= age[0]) & (frame["age"] <= age[1])
    frame = frame[keep].copy()
    frame["age_band"] = [BANDS[min(int(a) // 10, 9)] for a in frame["age"]]
    if condition_codes:
        frame["condition"] = _having(frame, conditions, condition_codes).astype(float)
    return frame


def levels(name: str) -> tuple[str, ...]:
    if name == "sex":
        return SEXES
    if name == "age_band":
        return BANDS
    return BINARY


def category(frame: pd.DataFrame, name: str) -> pd.Series:
    """A categorical variable as level strings; NaN where missing."""
    if name in ("sex", "age_band"):
        return frame[name].astype(object)
    values = frame[name]
    assert set(values.dropna().unique()) <= {0.0, 1.0}, name
    return values.map({0.0: "0", 1.0: "1"}).astype(object)


def moments(values: pd.Series) -> dict[str, Any]:
    """n, missing, mean, sample and population variance of one column."""
    x = values.to_numpy(dtype=float)
    known = x[~np.isnan(x)]
    n = int(known.size)
    return {
        "n": n,
        "missing": int(x.size - n),
        "mean": float(np.mean(known)) if n else math.nan,
        "variance": float(np.var(known, ddof=1)) if n > 1 else math.nan,
        "pop_sd": float(np.std(known, ddof=0)) if n else math.nan,
        "values": known,
    }


def summary(frame: pd.DataFrame, variables: Sequence[str], by: str | None = None) -> dict:
    """{level: {variable: moments}}; level "" without `by`."""
    if by is None:
        return {"": {v: moments(frame[v]) for v in variables}}
    cat = category(frame, by)
    return {lvl: {v: moments(frame.loc[cat == lvl, v]) for v in variables} for lvl in levels(by)}


def correlation(frame: pd.DataFrame, variables: Sequence[str]) -> dict[str, Any]:
    """Complete-case n, means, population sds, sample covariance and Pearson r."""
    columns = frame[list(variables)]
    complete = columns.dropna().to_numpy(dtype=float)
    return {
        "n": len(complete),
        "means": complete.mean(axis=0),
        "pop_sd": complete.std(axis=0, ddof=0),
        "covariance": np.cov(complete, rowvar=False, ddof=1),
        "matrix": np.corrcoef(complete, rowvar=False),
        "missing": {v: int(columns[v].isna().sum()) for v in variables},
    }


def histogram(frame: pd.DataFrame, variable: str, edges: Sequence[float]) -> dict[str, Any]:
    """numpy.histogram bins over [e0, ek], the outside and missing counts."""
    x = frame[variable].to_numpy(dtype=float)
    known = x[~np.isnan(x)]
    inside = (known >= edges[0]) & (known <= edges[-1])
    counts, _ = np.histogram(known[inside], bins=np.asarray(edges, dtype=float))
    return {
        "counts": [int(c) for c in counts],
        "outside": int((~inside).sum()),
        "missing": int(np.isnan(x).sum()),
    }


def quantiles(frame: pd.DataFrame, variable: str, qs: Sequence[float]) -> dict[str, Any]:
    """n and numpy's 'inverted_cdf' quantiles of the known values."""
    x = frame[variable].dropna().to_numpy(dtype=float)
    values = [float(np.quantile(x, q, method="inverted_cdf")) for q in qs] if len(x) else []
    return {"n": len(x), "values": values}


def table(frame: pd.DataFrame, row: str, col: str) -> dict[str, Any]:
    """Counts per (row level, col level), zero cells included, and the missing count."""
    r, c = category(frame, row), category(frame, col)
    known = r.notna() & c.notna()
    counts = [[int(((r == a) & (c == b) & known).sum()) for b in levels(col)] for a in levels(row)]
    return {"counts": counts, "missing": int((~known).sum())}


def chi_square(counts: Sequence[Sequence[int]]) -> dict[str, Any]:
    test = stats.chi2_contingency(np.asarray(counts), correction=False)
    return {
        "statistic": float(test.statistic),
        "df": int(test.dof),
        "p_value": float(test.pvalue),
        "expected": np.asarray(test.expected_freq, dtype=float),
    }


def woolf(a: int, b: int, c: int, d: int) -> dict[str, Any]:
    """Odds ratio a d / (b c), Woolf 95% interval and Wald z test of log OR = 0."""
    log_or = math.log(a * d / (b * c))
    se = math.sqrt(1 / a + 1 / b + 1 / c + 1 / d)
    z975 = float(stats.norm.ppf(0.975))
    z = log_or / se
    return {
        "odds_ratio": math.exp(log_or),
        "ci95": [math.exp(log_or - z975 * se), math.exp(log_or + z975 * se)],
        "statistic": z,
        "p_value": float(2 * stats.norm.sf(abs(z))),
    }


def welch_from_stats(
    n1: int, mean1: float, var1: float, n2: int, mean2: float, var2: float
) -> dict[str, Any]:
    """Welch's test of mean2 - mean1 from group statistics (sample variances): t and p
    from scipy.stats.ttest_ind_from_stats, the Welch-Satterthwaite df and the 95% CI."""
    res = stats.ttest_ind_from_stats(
        mean2, math.sqrt(var2), n2, mean1, math.sqrt(var1), n1, equal_var=False
    )
    a, b = var2 / n2, var1 / n1
    df = (a + b) ** 2 / (a**2 / (n2 - 1) + b**2 / (n1 - 1))
    diff, se = mean2 - mean1, math.sqrt(a + b)
    half = float(stats.t.ppf(0.975, df)) * se
    return {
        "statistic": float(res.statistic),
        "p_value": float(res.pvalue),
        "df": df,
        "estimate": diff,
        "se": se,
        "ci95": [diff - half, diff + half],
    }


def welch_pooled(first: np.ndarray, second: np.ndarray) -> dict[str, Any]:
    """scipy.stats.ttest_ind(second, first, equal_var=False) on the pooled values."""
    res = stats.ttest_ind(second, first, equal_var=False)
    ci = res.confidence_interval(0.95)
    return {
        "statistic": float(res.statistic),
        "p_value": float(res.pvalue),
        "df": float(res.df),
        "estimate": float(np.mean(second) - np.mean(first)),
        "ci95": [float(ci.low), float(ci.high)],
    }
