"""The local inputs of the moment-based analyses computed as SQL in a database source
(`data.pushdown` has the cohort): the same values as the in-memory functions they
mirror, so a party holding 10 million patients needs no copy of them.

- `stratified_moments` = `moment_release.stratified_moments` (summary, t-test);
- `cross_table` = `variables.cross_table` (contingency);
- `complete_case_moments` = `correlation.analysis.complete_case_moments`.

Counts are exact. Means, variances and covariances are equal up to the order of
summation (the database adds in its own order): relative differences of at most 5e-14
observed, 1e-9 allowed by tests/test_pushdown.py. Variances are two-pass, as in memory:
the first query gives counts and sums, the second sums squared deviations from the
means found by the first (bound as parameters), so no cancellation of large squares.

The checks are made as in memory and in the same order: a missing column (DataError),
values beyond the fixed-point range on the whole column, or a 0/1 variable with other
values on the whole column (UnusableValues, decided jointly), never on the cohort.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import sqlalchemy as sa

from smpc_ehr.analyses.base import Params
from smpc_ehr.analyses.common.variables import (
    CONDITION,
    MAX_ABS_VALUE,
    category_levels,
    check_binary,
    check_column,
    cohort_filter,
)
from smpc_ehr.data.pushdown import age_band, cohort_where, has_condition, level
from smpc_ehr.data.relations import SqlSnapshot

_FIELDS = 6  # as moment_release: count, mean, variance, missing, [all 0/1], ones


def _columns(snapshot: SqlSnapshot) -> tuple[str, ...]:
    return (*snapshot.relations.features, *snapshot.relations.outcomes)


def _facts(snapshot: SqlSnapshot, names: Sequence[str]) -> dict[str, tuple[float, bool]]:
    """Per numeric column of the party among `names`: the largest magnitude over the
    whole column (NaN if all missing) and whether all its values are 0 or 1, in one
    scan (what `PartyData.max_abs` and `binary` hold)."""
    present = [n for n in dict.fromkeys(names) if n in _columns(snapshot)]
    if not present:
        return {}
    patients = snapshot.relations.patients
    parts: list[sa.ColumnElement[Any]] = []
    for name in present:
        x = patients.c[name]
        parts.append(sa.func.max(sa.func.abs(x)))
        parts.append(sa.func.sum(sa.case((sa.and_(x != 0, x != 1), 1), else_=0)))
    row = snapshot.connection.execute(sa.select(*parts)).one()
    out = {}
    for i, name in enumerate(present):
        biggest, others = row[2 * i], row[2 * i + 1]
        out[name] = (float("nan") if biggest is None else float(biggest), not others)
    return out


class _Columns:
    """The numeric columns an analysis reads, checked as `variables.numeric_values`."""

    def __init__(self, snapshot: SqlSnapshot, names: Sequence[str], limit: float) -> None:
        self.snapshot, self.limit = snapshot, limit
        self.facts = _facts(snapshot, names)

    def value(self, name: str) -> sa.ColumnElement[float]:
        check_column(name, _columns(self.snapshot), lambda: self.facts[name][0], self.limit)
        return self.snapshot.relations.patients.c[name]

    def binary(self, name: str) -> sa.ColumnElement[float]:
        values = self.value(name)
        check_binary(name, self.facts[name][1])
        return values


def _category(
    snapshot: SqlSnapshot, name: str, params: Params, columns: _Columns
) -> tuple[sa.ColumnElement[int] | sa.ColumnElement[float], int]:
    """The expression of a categorical variable's level number (NULL = missing) and
    its number of levels, with `variables.category_index`'s checks."""
    levels = len(category_levels(name, params))
    if name == "sex":
        return snapshot.relations.patients.c.sex_code, levels
    if name == "age_band":
        return age_band(snapshot, params["as_of"]), levels
    if name == CONDITION:
        has = has_condition(snapshot, tuple(params["condition_codes"]))
        return sa.case((has, 1), else_=0), levels
    return columns.binary(name), levels


def _strata(
    snapshot: SqlSnapshot,
    params: Params,
    by: str | None,
    levels: Sequence[str] | None,
    columns: _Columns,
) -> tuple[sa.ColumnElement[int] | sa.ColumnElement[float], dict[int, int]]:
    """The stratum expression and, per level number, the position of its stratum
    (levels of `by` not asked for are in none)."""
    if by is None:
        return sa.literal(0), {0: 0}
    expression, _ = _category(snapshot, by, params, columns)
    all_levels = category_levels(by, params)
    wanted = levels or all_levels
    return expression, {all_levels.index(lv): s for s, lv in enumerate(wanted)}


def stratified_moments(
    snapshot: SqlSnapshot,
    params: Params,
    variables: Sequence[str],
    by: str | None,
    levels: Sequence[str] | None = None,
) -> np.ndarray:
    """`moment_release.stratified_moments` in the database: shape (6, strata x
    variables): count, mean, population variance, missing count, [all values 0/1] and
    count of ones of each variable in each stratum."""
    f = cohort_filter(params)
    by_column = [by] if by not in (None, "sex", "age_band", CONDITION) else []
    columns = _Columns(snapshot, [*by_column, *variables], MAX_ABS_VALUE)
    if by == CONDITION:
        category_levels(by, params)  # needs condition_codes, before any query
    where = cohort_where(snapshot, f)
    stratum, position = _strata(snapshot, params, by, levels, columns)
    values = [columns.value(name) for name in variables]
    inner = (
        sa.select(stratum.label("s"), *(v.label(f"v{i}") for i, v in enumerate(values)))
        .where(*where)
        .subquery()
    )
    xs = [inner.c[f"v{i}"] for i in range(len(values))]
    first: list[sa.ColumnElement[Any]] = [sa.func.count(inner.c.s)]
    for x in xs:
        first += [
            sa.func.count(x),
            sa.func.sum(x),
            sa.func.sum(sa.case((sa.or_(x == 0, x == 1), 1), else_=0)),
            sa.func.sum(sa.case((x == 1, 1), else_=0)),
        ]
    out = np.zeros((_FIELDS, len(position), len(values)))
    seen: dict[object, int] = {}
    for s_value, size, *per in snapshot.connection.execute(
        sa.select(inner.c.s, *first).group_by(inner.c.s)
    ):
        if s_value is None:  # missing stratum variable: in no stratum
            continue
        number = level(s_value, len(category_levels(by, params)) if by else 1, "a stratum")
        if number not in position:
            continue
        s = position[number]
        seen[s_value] = s
        for v in range(len(values)):
            count, total, binary, ones = per[4 * v : 4 * v + 4]
            out[0, s, v] = count
            out[3, s, v] = int(size) - int(count)
            out[4, s, v] = int(int(binary) == int(count))
            out[5, s, v] = int(ones)
            if count:
                out[1, s, v] = float(total) / int(count)
    out[4][out[0] == 0] = 1  # no values: "all 0/1" holds (`moments.local_binary`)
    if seen and out[0].any():
        _variances(snapshot, inner, xs, seen, out)
    return out.reshape(_FIELDS, -1)


def _variances(
    snapshot: SqlSnapshot,
    inner: sa.Subquery,
    xs: Sequence[sa.ColumnElement[Any]],
    seen: dict[object, int],
    out: np.ndarray,
) -> None:
    """Second pass: population variances about the first pass's means (bound)."""
    parts = []
    for v, x in enumerate(xs):
        mean = sa.case(
            *((inner.c.s == s_value, float(out[1, s, v])) for s_value, s in seen.items()),
            else_=None,
        )
        parts.append(sa.func.sum((x - mean) * (x - mean)))
    query = sa.select(inner.c.s, *parts).group_by(inner.c.s)
    for s_value, *squares in snapshot.connection.execute(query):
        s = seen.get(s_value)
        if s is None:
            continue
        for v, total in enumerate(squares):
            if out[0, s, v]:
                out[2, s, v] = float(total) / out[0, s, v]


def cross_table(
    snapshot: SqlSnapshot, params: Params, row: str, col: str
) -> tuple[np.ndarray, int]:
    """`variables.cross_table` in the database: the cohort's patients per (row level,
    col level) cell and how many of them miss either variable."""
    f = cohort_filter(params)
    numeric = [n for n in (row, col) if n not in ("sex", "age_band", CONDITION)]
    columns = _Columns(snapshot, numeric, MAX_ABS_VALUE)
    for name in (row, col):
        if name == CONDITION:
            category_levels(name, params)
    where = cohort_where(snapshot, f)
    r, rows = _category(snapshot, row, params, columns)
    c, cols = _category(snapshot, col, params, columns)
    inner = sa.select(r.label("r"), c.label("c"), sa.literal(0).label("one")).where(*where)
    sub = inner.subquery()
    query = sa.select(sub.c.r, sub.c.c, sa.func.count(sub.c.one)).group_by(sub.c.r, sub.c.c)
    table = np.zeros((rows, cols), dtype=np.int64)
    size = 0
    for r_value, c_value, n in snapshot.connection.execute(query):
        size += int(n)
        if r_value is not None and c_value is not None:
            table[level(r_value, rows, row), level(c_value, cols, col)] += int(n)
    return table, size - int(table.sum())


def complete_case_moments(snapshot: SqlSnapshot, params: Params) -> np.ndarray:
    """`correlation.analysis.complete_case_moments` in the database: the complete-case
    count, means, population covariance, missing counts, per variable [all 0/1] and
    count of ones over the complete cases, per pair the complete cases with both at 1."""
    f = cohort_filter(params)
    names = list(params["variables"])
    columns = _Columns(snapshot, names, MAX_ABS_VALUE)
    where = cohort_where(snapshot, f)
    values = [columns.value(name) for name in names]
    d = len(values)
    inner = sa.select(*(v.label(f"v{i}") for i, v in enumerate(values))).where(*where).subquery()
    xs = [inner.c[f"v{i}"] for i in range(d)]
    complete = sa.and_(*(x.is_not(None) for x in xs))
    pairs = [(a, b) for a in range(d) for b in range(a + 1, d)]

    def when(condition: sa.ColumnElement[bool], value: object = 1) -> sa.ColumnElement[float]:
        return sa.case((sa.and_(complete, condition), value), else_=None)

    parts: list[sa.ColumnElement[Any]] = [sa.func.count(sa.literal(0))]
    parts += [sa.func.count(when(sa.true()))]
    parts += [sa.func.count(x) for x in xs]
    parts += [sa.func.sum(when(sa.true(), x)) for x in xs]
    parts += [sa.func.count(when(sa.or_(x == 0, x == 1))) for x in xs]
    parts += [sa.func.count(when(x == 1)) for x in xs]
    parts += [sa.func.count(when(sa.and_(xs[a] == 1, xs[b] == 1))) for a, b in pairs]
    row = [0 if v is None else v for v in snapshot.connection.execute(sa.select(*parts)).one()]
    size, count = int(row[0]), int(row[1])
    present = np.array(row[2 : 2 + d], dtype=float)
    sums = np.array(row[2 + d : 2 + 2 * d], dtype=float)
    binary = np.array([int(b) == count for b in row[2 + 2 * d : 2 + 3 * d]], dtype=float)
    ones = np.array(row[2 + 3 * d : 2 + 4 * d], dtype=float)
    both = np.array(row[2 + 4 * d :], dtype=float)
    means = sums / count if count else np.zeros(d)
    cov = np.zeros((d, d))
    if count:
        centred = [x - float(m) for x, m in zip(xs, means, strict=True)]
        products = [sa.func.sum(when(sa.true(), centred[a] * centred[b])) for a, b in _upper(d)]
        totals = snapshot.connection.execute(sa.select(*products)).one()
        for (a, b), total in zip(_upper(d), totals, strict=True):
            cov[a, b] = cov[b, a] = float(total) / count
    missing = size - present
    return np.concatenate([[count], means, cov.reshape(-1), missing, binary, ones, both]).astype(
        float
    )


def _upper(d: int) -> list[tuple[int, int]]:
    return [(a, b) for a in range(d) for b in range(a, d)]
