"""An OMOP CDM database as push-down's two relations (`relations.Relations`), with the
mapping rules of the materialised path (`omop`, `omop_features`) written as SQL:

- `patients`: one row per `person`; `sex_code` from `gender_concept_id` (8532 F,
  8507 M, else U); `birth_key` from the day of `birth_datetime`, else `year_of_birth`
  with a missing month taken as July and a missing day as the 15th; the mapped features
  and outcomes (`omop_features.mapped_columns`), NULL where missing.
- `conditions`: `condition_occurrence` with `condition_source_value` as the code (spelled
  as the CSV format spells it by `normalize_code`) and `condition_start_date` as onset.

What push-down does not check (the materialised path does, naming the row): a person with
neither birth date nor year (no `birth_key`: in no cohort), a condition whose person is
missing (not joined).
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa

from smpc_ehr.data.codes import CODE_REGEX
from smpc_ehr.data.mapping import SourceMapping
from smpc_ehr.data.omop import FEMALE_CONCEPT, MALE_CONCEPT, MISSING_DAY, MISSING_MONTH, icd10
from smpc_ehr.data.omop_features import mapped_columns
from smpc_ehr.data.relations import Relations
from smpc_ehr.errors import DataError

_CODE = re.compile(CODE_REGEX)


def omop_relations(mapping: SourceMapping, schema: str | None = None) -> Relations:
    """The `Relations` of the CDM in `schema` under `mapping`."""
    person = sa.table(
        "person",
        sa.column("person_id"),
        sa.column("gender_concept_id"),
        sa.column("year_of_birth"),
        sa.column("month_of_birth"),
        sa.column("day_of_birth"),
        sa.column("birth_datetime", sa.DateTime),
        schema=schema,
    )
    p = person.c
    sex_code = sa.case(
        (p.gender_concept_id == FEMALE_CONCEPT, 0),
        (p.gender_concept_id == MALE_CONCEPT, 1),
        else_=2,
    )
    from_datetime = (
        sa.extract("year", p.birth_datetime) * 10000
        + sa.extract("month", p.birth_datetime) * 100
        + sa.extract("day", p.birth_datetime)
    )
    from_parts = (
        p.year_of_birth * 10000
        + sa.func.coalesce(p.month_of_birth, MISSING_MONTH) * 100
        + sa.func.coalesce(p.day_of_birth, MISSING_DAY)
    )
    birth_key = sa.case((p.birth_datetime.is_not(None), from_datetime), else_=from_parts)
    names = (*(f.name for f in mapping.features), *mapping.outcomes)
    columns: list[sa.ColumnElement[Any]] = [
        p.person_id.label("pid"),
        sa.cast(sex_code, sa.Integer).label("sex_code"),
        sa.cast(birth_key, sa.Integer).label("birth_key"),
    ]
    joined: sa.FromClause = person
    if names:
        mapped = mapped_columns(mapping, schema).subquery("mapped")
        joined = person.outerjoin(mapped, mapped.c.person_id == p.person_id)
        columns += [sa.cast(mapped.c[name], sa.Double).label(name) for name in names]
    patients = sa.select(*columns).select_from(joined).subquery("patient_rel")
    condition = sa.table(
        "condition_occurrence",
        sa.column("person_id"),
        sa.column("condition_source_value"),
        sa.column("condition_start_date", sa.Date),
        schema=schema,
    )
    c = condition.c
    conditions = sa.select(
        c.person_id.label("pid"),
        c.condition_source_value.label("code"),
        c.condition_start_date.label("onset"),
    ).subquery("condition_rel")
    return Relations(
        patients=patients,
        conditions=conditions,
        features=tuple(f.name for f in mapping.features),
        outcomes=mapping.outcomes,
        normalize_code=_speller,
    )


def _speller(value: str) -> str:
    """A stored ICD-10 code as the CSV format writes it (`omop.icd10`), or DataError."""
    code = icd10(str(value or ""))
    if not _CODE.match(code):
        raise DataError(
            "OMOP table condition_occurrence, column condition_source_value: "
            f"{value!r} is not an ICD-10 code (e.g. E75.22 or E7522)"
        )
    return code
