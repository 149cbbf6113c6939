"""A template's coarser public resolution for date parameters (`resolution = "month"` or
"year"): a defence in depth against trackers in exact runs (issue 14: two counts with
`as_of` one day apart isolate the patients born that day)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from smpc_ehr.errors import TemplateError
from smpc_ehr.study.template import ProtocolTemplate, load_template, parse_template

REPO = Path(__file__).resolve().parents[1]

TEMPLATE = """
[protocol]
name = "dated"
title = "Dates at three resolutions"
analysis = "count"
version = 1
leakage = "nothing"

[parameters.day]
type = "date"

[parameters.month]
type = "date"
min = "2000-01-01"
max = "2030-12-31"
resolution = "month"

[parameters.year]
type = "date"
resolution = "year"
"""


@pytest.fixture(scope="module")
def dated() -> ProtocolTemplate:
    return parse_template(TEMPLATE)


def test_values_on_the_resolution_bind(dated: ProtocolTemplate) -> None:
    bound = dated.bind({"day": "2026-01-02", "month": "2026-03-01", "year": "2025-01-01"})
    assert (bound["day"], bound["month"], bound["year"]) == (
        dt.date(2026, 1, 2),
        dt.date(2026, 3, 1),
        dt.date(2025, 1, 1),
    )
    assert dated.bind({"month": dt.date(2030, 12, 1)})["month"] == dt.date(2030, 12, 1)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            {"month": "2026-01-02"},
            "parameter 'month' (date): 2026-01-02 is not allowed: this template takes month "
            "to the month (the first day of a month); nearest allowed: 2026-01-01 or 2026-02-01",
        ),
        ({"month": "2025-12-31"}, "nearest allowed: 2025-12-01 or 2026-01-01"),  # year wraps
        ({"month": dt.date(2030, 12, 15)}, "nearest allowed: 2030-12-01"),  # 2031: beyond max
        (
            {"year": "2025-06-30"},
            "takes year to the year (1 January); nearest allowed: 2025-01-01 or 2026-01-01",
        ),
        (
            {"month": "1999-12-01"},
            "out of bounds; allowed: between 2000-01-01 and 2030-12-31, the first day of a month",
        ),
    ],
)
def test_values_off_the_resolution_are_refused_naming_the_nearest(
    dated: ProtocolTemplate, raw: dict[str, object], expected: str
) -> None:
    with pytest.raises(TemplateError) as info:
        dated.bind(raw)
    assert expected in str(info.value)
    if "nearest" in expected:
        assert str(info.value).endswith(expected)  # out-of-bounds neighbours are not listed


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ('type = "date"\nresolution = "week"\n', "resolution must be one of day, month, year"),
        ('type = "date"\nresolution = "month"\ndefault = "2026-01-15"\n', "bad default"),
        ('type = "int"\nresolution = "month"\n', "unknown key(s) resolution for type int"),
    ],
)
def test_bad_resolution_specs_are_template_errors(table: str, expected: str) -> None:
    text = TEMPLATE.split("[parameters.day]")[0] + "[parameters.x]\n" + table
    with pytest.raises(TemplateError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        parse_template(text, "bad.toml")


def test_the_resolution_is_part_of_the_approved_hash(dated: ProtocolTemplate) -> None:
    daily = parse_template(TEMPLATE.replace('resolution = "month"\n', ""))
    assert daily.canonical_hash != dated.canonical_hash
    assert daily.bind({"month": "2026-01-02"})["month"] == dt.date(2026, 1, 2)


def test_the_count_template_takes_as_of_to_the_month() -> None:
    count = load_template(REPO / "protocols" / "rare_disease_count.toml")
    assert count.version >= 3
    assert count.bind({"codes": "E11", "as_of": "2026-02-01"})["as_of"] == dt.date(2026, 2, 1)
    with pytest.raises(TemplateError, match="nearest allowed: 2026-01-01 or 2026-02-01"):
        count.bind({"codes": "E11", "as_of": "2026-01-02"})
    # The tracker: as_of one day apart. One of the two is always refused.
    day, next_day = dt.date(2026, 3, 31), dt.date(2026, 4, 1)
    with pytest.raises(TemplateError, match="as_of"):
        count.bind({"codes": "F32.9", "as_of": day})
    assert count.bind({"codes": "F32.9", "as_of": next_day})["as_of"] == next_day
