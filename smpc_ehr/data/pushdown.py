"""The cohort and the joint count's cells as SQL over a database source's `Relations`,
so that a party's local step runs in the database and the party holds no row-level
table (docs/data.md, "Push-down").

Same answers as `cohort` by construction:
- codes: the distinct stored codes are read (a few hundred values), spelled as the CSV
  format spells them (`Relations.normalize_code`) and matched in Python with
  `codes.match_table`, the in-memory matcher; the query then keeps condition rows whose
  stored code is IN that list (an expanding bound parameter);
- ages: no division in SQL (integer division differs between databases: DuckDB's `/`
  is a float division, and truncation and flooring differ for negatives). Age >= k at
  `as_of` is `birth_key <= as_of_key - 10000 k`, with the bounds computed here in Python
  and bound; a patient born after `as_of` is excluded explicitly;
- the onset window compares the DATE column with bound dates; an unknown onset (NULL)
  is never inside a window, as NaT is not in memory.

Only SQLAlchemy Core constructs are used and every value is a bound parameter, never
text formatted into SQL (tests/test_pushdown.py checks the statements sent). The SQL is
what SQLite, DuckDB and PostgreSQL have in common: CASE, COUNT, SUM, IN, subqueries.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import sqlalchemy as sa

from smpc_ehr.data.codes import match_table
from smpc_ehr.data.cohort import AGE_BANDS, STRATA, CohortFilter, cell_labels
from smpc_ehr.data.records import SEXES
from smpc_ehr.data.relations import SqlSnapshot
from smpc_ehr.errors import DataError

Condition = sa.ColumnElement[bool]


def day_key(day: date) -> int:
    """A date as the integer yyyymmdd that `Relations.patients.birth_key` holds."""
    return day.year * 10000 + day.month * 100 + day.day


def matching_codes(snapshot: SqlSnapshot, patterns: tuple[str, ...]) -> list[str]:
    """The stored codes (as stored) that the patterns select, matched like in memory."""
    conditions = snapshot.relations.conditions
    stored = snapshot.connection.execute(sa.select(conditions.c.code).distinct()).scalars().all()
    spelled = [snapshot.relations.normalize_code("" if s is None else str(s)) for s in stored]
    table = np.asarray(spelled, dtype=str) if spelled else np.empty(0, dtype="<U1")
    hit = match_table(table, patterns)
    return [code for code, selected in zip(stored, hit, strict=True) if selected]


def has_condition(
    snapshot: SqlSnapshot,
    patterns: tuple[str, ...],
    onset_from: date | None = None,
    onset_to: date | None = None,
) -> Condition:
    """'The patient has a condition row matching the patterns (onset in the window)'."""
    stored = matching_codes(snapshot, patterns)
    if not stored:
        return sa.false()
    rel = snapshot.relations
    rows: list[Condition] = [rel.conditions.c.code.in_(stored)]
    if onset_from is not None:
        rows.append(rel.conditions.c.onset >= onset_from)
    if onset_to is not None:
        rows.append(rel.conditions.c.onset <= onset_to)
    return rel.patients.c.pid.in_(sa.select(rel.conditions.c.pid).where(*rows))


def cohort_where(snapshot: SqlSnapshot, f: CohortFilter) -> list[Condition]:
    """The WHERE conditions on `Relations.patients` selecting the cohort `f`."""
    birth = snapshot.relations.patients.c.birth_key
    key = day_key(f.as_of)
    where: list[Condition] = [birth <= key]  # born after as_of: in no cohort
    if f.age_min is not None:  # age >= a  <=>  as_of_key - birth_key >= 10000 a
        where.append(birth <= key - 10000 * f.age_min)
    if f.age_max is not None:  # age <= b  <=>  as_of_key - birth_key < 10000 (b + 1)
        where.append(birth > key - 10000 * (f.age_max + 1))
    if f.sex is not None:
        where.append(snapshot.relations.patients.c.sex_code == SEXES.index(f.sex))
    if f.codes:
        where.append(has_condition(snapshot, f.codes, f.onset_from, f.onset_to))
    return where


def age_band(snapshot: SqlSnapshot, as_of: date) -> sa.ColumnElement[int]:
    """Each patient's age band number at `as_of` (0: 0-9 ... 9: 90+), for patients born
    on or before `as_of`: a CASE over bound birth-key bounds."""
    birth = snapshot.relations.patients.c.birth_key
    key = day_key(as_of)
    bands = range(len(AGE_BANDS) - 1, 0, -1)
    return sa.case(*((birth <= key - 100000 * b, sa.literal(b)) for b in bands), else_=0)


def level(value: object, levels: int, what: str) -> int:
    """A level number read back from the database, checked against the public levels."""
    if value is None or isinstance(value, bool):
        raise DataError(f"the database source gave {value!r} for {what}")
    number = int(value)  # type: ignore[call-overload]
    if number != value or not 0 <= number < levels:
        raise DataError(f"the database source gave {value!r} for {what}, not 0..{levels - 1}")
    return number


def count_cells(
    snapshot: SqlSnapshot, f: CohortFilter, by: tuple[str, ...] = ()
) -> tuple[list[dict[str, str]], np.ndarray]:
    """`cohort.count_cells` in the database: distinct cohort patients per cell of `by`
    (labels, int64 counts in label order)."""
    labels = cell_labels(by)
    patients = snapshot.relations.patients
    strata = {"sex": patients.c.sex_code, "age_band": age_band(snapshot, f.as_of)}
    inner = (
        sa.select(sa.literal(0).label("one"), *(strata[v].label(v) for v in by))
        .where(*cohort_where(snapshot, f))
        .subquery()
    )
    keys = [inner.c[v] for v in by]  # grouped by name: the expressions hold parameters
    query = sa.select(*keys, sa.func.count(inner.c.one)).group_by(*keys)
    counts = np.zeros(len(labels), dtype=np.int64)
    for *values, n in snapshot.connection.execute(query):
        cell = 0
        for var, value in zip(by, values, strict=True):
            cell = cell * len(STRATA[var]) + level(value, len(STRATA[var]), var)
        counts[cell] += int(n)
    return labels, counts


def source_totals(snapshot: SqlSnapshot) -> tuple[int, int, int]:
    """Patients, condition rows and distinct stored codes of a database source, counted
    in the database (what `config check` prints without loading the rows)."""
    rel = snapshot.relations
    patients = sa.select(sa.func.count()).select_from(rel.patients)
    rows = sa.select(sa.func.count()).select_from(rel.conditions)
    codes = sa.select(sa.func.count(sa.distinct(rel.conditions.c.code)))
    run = snapshot.connection.execute
    return (
        int(run(patients).scalar_one()),
        int(run(rows).scalar_one()),
        int(run(codes).scalar_one()),
    )
