"""Features and outcomes of an OMOP CDM source, as SQLAlchemy constructs (docs/data.md,
"Features and outcomes").

A feature's value is a person's latest mapped value on or before `as_of`: from the rows
of `measurement` and `observation` whose `*_source_value` is one of the feature's LOINC
codes or whose `*_concept_id` is one of its concept ids, with a `value_as_number`. The
latest is the one with the latest `*_date`; on the same day a measurement comes before
an observation, then the larger row id wins. Conversions and rounding run in SQL, so
`feature_select` gives push-down the same values `read_features` loads. Every value is
a bound parameter; tables and columns are SQLAlchemy constructs.
"""

from __future__ import annotations

import math
from datetime import timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from smpc_ehr.data.mapping import Feature, SourceMapping
from smpc_ehr.data.readmission import WINDOW_DAYS, readmit_30d
from smpc_ehr.errors import DataError

EVENT_TABLES = ("measurement", "observation")
"""Where feature values are read, in their order of precedence on the same day."""
INPATIENT_VISIT = 9201
"""visit_concept_id of an inpatient visit."""


def event_table(name: str, schema: str | None) -> sa.TableClause:
    """The columns of `measurement` or `observation` that features read."""
    return sa.table(
        name,
        sa.column(f"{name}_id"),
        sa.column("person_id"),
        sa.column(f"{name}_concept_id"),
        sa.column(f"{name}_date", sa.Date),
        sa.column("value_as_number"),
        sa.column("unit_source_value"),
        sa.column(f"{name}_source_value"),
        schema=schema,
    )


def _candidates(name: str, rank: int, mapping: SourceMapping, schema: str | None) -> sa.Select:
    t = event_table(name, schema)
    code, concept = t.c[f"{name}_source_value"], t.c[f"{name}_concept_id"]
    matches = [
        (sa.or_(code.in_(f.loinc), concept.in_(f.concept_ids)), sa.literal(f.name))
        for f in mapping.features
    ]
    return sa.select(
        t.c.person_id,
        sa.case(*matches).label("feature"),
        sa.literal(rank).label("rank"),
        t.c[f"{name}_id"].label("row_id"),
        t.c[f"{name}_date"].label("day"),
        code.label("loinc"),
        concept.label("concept_id"),
        t.c.value_as_number.label("raw"),
        t.c.unit_source_value.label("unit"),
    ).where(
        t.c[f"{name}_date"] <= sa.bindparam(f"as_of_{name}", mapping.as_of, type_=sa.Date),
        t.c.value_as_number.is_not(None),
        sa.or_(*(m for m, _ in matches)),
    )


def _value(f: Feature, rows: sa.Subquery) -> sa.ColumnElement[Any]:
    """The feature's value of a row in SQL: converted by its code, rounded (in NUMERIC,
    which PostgreSQL's two-argument round needs)."""
    raw = rows.c.raw
    whens = [(rows.c.loinc == code, conv) for code, conv in f.convert.items() if code in f.loinc]
    whens += [
        (rows.c.concept_id == int(code), conv)
        for code, conv in f.convert.items()
        if code not in f.loinc
    ]
    converted: sa.ColumnElement[Any] = raw
    if whens:
        converted = sa.case(
            *((cond, raw * sa.literal(c.scale) + sa.literal(c.offset)) for cond, c in whens),
            else_=raw,
        )
    if f.decimals is None:
        return sa.cast(converted, sa.Double)
    rounded = sa.func.round(sa.cast(converted, sa.Numeric(38, 12)), sa.literal(f.decimals))
    return sa.cast(rounded, sa.Double)  # one type for every feature (DuckDB's CASE unifies)


def latest_values(mapping: SourceMapping, schema: str | None = None) -> sa.Select:
    """One row per person and mapped feature: the latest value on or before as_of,
    with its table, row id, code and unit (to check) and `value` (converted)."""
    union = sa.union_all(
        *(_candidates(name, rank, mapping, schema) for rank, name in enumerate(EVENT_TABLES))
    ).subquery("mapped")
    order = sa.func.row_number().over(
        partition_by=(union.c.person_id, union.c.feature),
        order_by=(union.c.day.desc(), union.c.rank, union.c.row_id.desc()),
    )
    ranked = sa.select(union, order.label("latest")).subquery("ranked")
    value = sa.case(*((ranked.c.feature == f.name, _value(f, ranked)) for f in mapping.features))
    return sa.select(
        ranked.c.person_id,
        ranked.c.feature,
        ranked.c.rank,
        ranked.c.row_id,
        ranked.c.loinc,
        ranked.c.concept_id,
        ranked.c.raw,
        ranked.c.unit,
        value.label("value"),
    ).where(ranked.c.latest == 1)


def feature_select(mapping: SourceMapping, schema: str | None = None) -> sa.Select:
    """(person_id, one column per feature): what push-down joins to the persons. A
    person without any mapped value has no row; a feature without a value is NULL."""
    rows = latest_values(mapping, schema).subquery("latest")
    return sa.select(
        rows.c.person_id,
        *(
            sa.func.max(sa.case((rows.c.feature == f.name, rows.c.value))).label(f.name)
            for f in mapping.features
        ),
    ).group_by(rows.c.person_id)


def read_columns(
    connection: sa.Connection, mapping: SourceMapping, schema: str | None, person_ids: list[Any]
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The features and outcomes of the persons `person_ids` (in this order)."""
    index = {pid: i for i, pid in enumerate(person_ids)}
    return (
        read_features(connection, mapping, schema, index),
        read_outcomes(connection, mapping, schema, index),
    )


def read_features(
    connection: sa.Connection,
    mapping: SourceMapping,
    schema: str | None,
    index: dict[Any, int],
) -> dict[str, np.ndarray]:
    """Each feature's values per person (`index`: person_id -> position), checked."""
    features = {f.name: np.full(len(index), np.nan) for f in mapping.features}
    if not mapping.features:
        return features
    by_name = {f.name: f for f in mapping.features}
    for row in connection.execute(latest_values(mapping, schema)):
        table = EVENT_TABLES[row.rank]
        where = f"{table}_id {row.row_id}"
        position = _position(index, row.person_id, table, where)
        if not isinstance(row.raw, int | float | Decimal) or not math.isfinite(row.raw):
            raise DataError(
                f"OMOP table {table}, column value_as_number, {where}: "
                f"{row.raw!r} is not a finite number"
            )
        feature = by_name[row.feature]
        expected = feature.expected_unit(row.loinc, row.concept_id)
        if expected is not None and row.unit not in (None, "", expected):
            raise DataError(
                f"OMOP table {table}, column unit_source_value, {where}: unit {row.unit!r} "
                f"is not {expected!r} (feature {feature.name}, code "
                f"{row.loinc or row.concept_id})"
            )
        features[feature.name][position] = float(row.value)
    return features


class days_between(FunctionElement[int]):  # lower case: used like a SQL function
    """`later - earlier` in whole days, for DATE columns (SQLite: ISO date text)."""

    type = sa.Integer()
    name = "days_between"
    inherit_cache = True


@compiles(days_between)
def _days_between(element: days_between, compiler: SQLCompiler, **kw: Any) -> str:
    """PostgreSQL and DuckDB: date - date is a number of days."""
    later, earlier = (compiler.process(c, **kw) for c in element.clauses)
    return f"({later} - {earlier})"


@compiles(days_between, "sqlite")
def _days_between_sqlite(element: days_between, compiler: SQLCompiler, **kw: Any) -> str:
    later, earlier = (compiler.process(c, **kw) for c in element.clauses)
    return f"CAST(julianday({later}) - julianday({earlier}) AS INTEGER)"


def outcome_select(mapping: SourceMapping, schema: str | None = None) -> sa.Select:
    """(person_id, readmit_30d) of the persons with an index stay (`readmission`'s rule
    in SQL, for push-down); a person without one has no row (missing)."""
    v = visit_table(schema)
    cutoff = mapping.as_of - timedelta(days=WINDOW_DAYS)
    inpatient = sa.bindparam("inpatient", INPATIENT_VISIT, type_=sa.Integer)
    index = (
        sa.select(v.c.person_id, sa.func.max(v.c.visit_end_date).label("discharged"))
        .where(
            v.c.visit_concept_id == inpatient,
            v.c.visit_end_date.is_not(None),
            v.c.visit_end_date <= sa.bindparam("cutoff", cutoff, type_=sa.Date),
        )
        .group_by(v.c.person_id)
        .subquery("index_stay")
    )
    again = visit_table(schema).alias("readmission")
    readmitted = sa.exists().where(
        again.c.person_id == index.c.person_id,
        again.c.visit_concept_id == inpatient,
        days_between(again.c.visit_start_date, index.c.discharged).between(1, WINDOW_DAYS),
    )
    return sa.select(index.c.person_id, sa.case((readmitted, 1.0), else_=0.0).label("readmit_30d"))


def mapped_columns(mapping: SourceMapping, schema: str | None = None) -> sa.Select:
    """(person_id, one column per feature and outcome) of every person, NULL where
    missing: the mapped part of push-down's `patients` relation."""
    person = sa.table("person", sa.column("person_id"), schema=schema)
    joined: sa.FromClause = person
    columns: list[sa.ColumnElement[Any]] = [person.c.person_id]
    if mapping.features:
        f = feature_select(mapping, schema).subquery("features")
        joined = joined.outerjoin(f, f.c.person_id == person.c.person_id)
        columns += [f.c[feature.name] for feature in mapping.features]
    if "readmit_30d" in mapping.outcomes:
        o = outcome_select(mapping, schema).subquery("outcomes")
        joined = joined.outerjoin(o, o.c.person_id == person.c.person_id)
        columns.append(o.c.readmit_30d)
    return sa.select(*columns).select_from(joined)


def _position(index: dict[Any, int], person_id: Any, table: str, where: str) -> int:
    """The person's position, or an error naming the row that refers to no person."""
    if person_id not in index:
        raise DataError(
            f"OMOP table {table}, column person_id, {where}: "
            f"person {person_id} is not in table person"
        )
    return index[person_id]


def visit_table(schema: str | None) -> sa.TableClause:
    """The columns of `visit_occurrence` that the readmission outcome reads."""
    return sa.table(
        "visit_occurrence",
        sa.column("visit_occurrence_id"),
        sa.column("person_id"),
        sa.column("visit_concept_id"),
        sa.column("visit_start_date"),
        sa.column("visit_end_date"),
        schema=schema,
    )


def read_outcomes(
    connection: sa.Connection,
    mapping: SourceMapping,
    schema: str | None,
    index: dict[Any, int],
) -> dict[str, np.ndarray]:
    """The outcomes the mapping names (`readmit_30d`: from inpatient visits)."""
    if "readmit_30d" not in mapping.outcomes:
        return {}
    from smpc_ehr.data.omop import _day

    v = visit_table(schema)
    rows = connection.execute(
        sa.select(v)
        .where(v.c.visit_concept_id == sa.bindparam("inpatient", INPATIENT_VISIT))
        .order_by(v.c.visit_occurrence_id)
    ).all()
    patient = np.empty(len(rows), dtype=np.int64)
    start = np.empty(len(rows), dtype="datetime64[D]")
    end = np.full(len(rows), np.datetime64("NaT"), dtype="datetime64[D]")
    for i, row in enumerate(rows):
        where = f"visit_occurrence_id {row.visit_occurrence_id}"
        patient[i] = _position(index, row.person_id, "visit_occurrence", where)
        if row.visit_start_date is None:
            raise DataError(f"OMOP table visit_occurrence, column visit_start_date, {where}: empty")
        start[i] = _day(row.visit_start_date, "visit_start_date", where, table="visit_occurrence")
        if row.visit_end_date is not None:
            end[i] = _day(row.visit_end_date, "visit_end_date", where, table="visit_occurrence")
    return {"readmit_30d": readmit_30d(len(index), patient, start, end, mapping.as_of)}
