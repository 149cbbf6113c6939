"""Tidy rows of a released result: one row per estimate, the same columns for every
analysis, so a CSV of any job loads into R or pandas as one long table.

Columns (COLUMNS): `analysis`; `group`, the stratum as `name=level` (several joined by
"; "), e.g. `sex=F`, `cluster=0`; `variable`, the measured variable; `term`, what
indexes an estimate within a variable (a model term, the other variable of a
correlation, a histogram bin, a quantile's q, a table column); `statistic`, what the
number is (`count`, `mean`, `sd`, `estimate`, `p_value`, ...); `value`; `lower` and
`upper`, the 95% confidence interval where one is released; `suppressed`, true when the
value is withheld by the release rules (then `value` is empty), empty when a null's
reason is not known (the generic rows); `note`.

Each analysis gives its rows in its package's tidy.py (`Analysis.tidy`); one without
gets `generic_rows`, a row per number of the result (docs/analyses.md, "Exports").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

Row = dict[str, Any]

COLUMNS = (
    "analysis",
    "group",
    "variable",
    "term",
    "statistic",
    "value",
    "lower",
    "upper",
    "suppressed",
    "note",
)


def row(
    statistic: str,
    value: Any,
    *,
    group: str = "",
    variable: str = "",
    term: str = "",
    ci: Iterable[float | None] | None = None,
    suppressed: bool | None = False,
    note: str = "",
) -> Row:
    """One estimate; `ci` is its (lower, upper) 95% interval when released."""
    lower, upper = (None, None) if ci is None else tuple(ci)
    return {
        "group": group,
        "variable": variable,
        "term": term,
        "statistic": statistic,
        "value": None if suppressed else value,
        "lower": lower,
        "upper": upper,
        "suppressed": suppressed,
        "note": note,
    }


def level(name: str, value: Any) -> str:
    """A group label `name=level`."""
    return f"{name}={value}"


def count_row(statistic: str, value: int | None, **where: Any) -> Row:
    """A count that is null exactly when suppressed (the small-cell rule)."""
    return row(statistic, value, suppressed=value is None, **where)


MOMENTS = ("n", "missing", "mean", "sd", "se", "variance")


def moment_rows(moments: Mapping[str, Any], *, group: str = "", variable: str = "") -> list[Row]:
    """n, missing, mean, sd, se and variance of one variable (common/moment_release):
    everything is withheld when its n is, the moments alone when a 0/1 variable's
    mean is (`mean_suppressed`), `missing` when it is null."""
    hidden = bool(moments.get("suppressed"))
    mean_hidden = hidden or bool(moments.get("mean_suppressed"))
    out = []
    for stat in MOMENTS:
        value = moments.get(stat)
        if stat == "n":
            withheld = hidden
        elif stat == "missing":
            withheld = value is None
        else:
            withheld = mean_hidden
        out.append(row(stat, value, group=group, variable=variable, suppressed=withheld))
    return out


def hypothesis_rows(test: Mapping[str, Any] | None, refused: str | None, **where: Any) -> list[Row]:
    """A test's statistic, df and p-value; one `statistic` row with the reason when the
    test was refused."""
    if test is None:
        return [row("statistic", None, suppressed=True, note=refused or "", **where)]
    method = str(test.get("method", ""))
    return [
        row(stat, test.get(key), note=method, **where)
        for stat, key in (("statistic", "statistic"), ("df", "df"), ("p_value", "p_value"))
    ]


def _walk(value: Any, path: str) -> Iterable[tuple[str, Any]]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _walk(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}[{index}]")
    elif value is None or isinstance(value, bool | int | float):
        yield path, value


def generic_rows(result: Mapping[str, Any]) -> list[Row]:
    """A row per number (or null) of the result, its path as `statistic` (e.g.
    `groups[0].survival[3]`); booleans as 0/1, text left out. A null's `suppressed`
    is empty: this fallback cannot tell a withheld value from an undefined one."""
    return [
        row(path, int(value) if isinstance(value, bool) else value, suppressed=None)
        for path, value in _walk(result, "")
        if path != "threshold"  # every analysis's threshold row comes from `result_rows`
    ]


def result_rows(analysis: str, rows: list[Row], result: Mapping[str, Any]) -> list[Row]:
    """The analysis's rows with the `analysis` column, then the facts every release
    shares: its small-cell threshold and, for a differentially private run, epsilon."""
    extra = []
    if isinstance(result.get("threshold"), int):
        extra.append(row("small_cell_threshold", result["threshold"]))
    dp = result.get("dp")
    if isinstance(dp, Mapping) and dp.get("epsilon") is not None:
        extra.append(row("epsilon", dp["epsilon"], note=str(dp.get("mechanism", ""))))
    return [{"analysis": analysis, **r} for r in [*rows, *extra]]
