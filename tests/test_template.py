"""Protocol templates: canonical hash, parsing errors, binding and encoding of values."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

from smpc_ehr.errors import TemplateError
from smpc_ehr.study.params import encode_params, parse_set_options
from smpc_ehr.study.template import ProtocolTemplate, load_template, parse_template

REPO = Path(__file__).resolve().parents[1]

BASE = """
[protocol]
name = "demo"
title = "Demo"
analysis = "count"
version = 1
leakage = "nothing"
"""

# One parameter of every type, with bounds.
ALL_TYPES = (
    BASE
    + """
[parameters.codes]
type = "codes"
required = true
max_items = 3

[parameters.sex]
type = "choice"
choices = ["F", "M", "U"]

[parameters.by]
type = "choices"
choices = ["sex", "age_band", "site"]
max_items = 2

[parameters.k]
type = "int"
min = 2
max = 10
default = 3

[parameters.eps]
type = "float"
min = 0.1
max = 2.5

[parameters.age]
type = "int_range"
min = 0
max = 120

[parameters.as_of]
type = "date"
min = "2000-01-01"
max = "2030-12-31"
default = "2026-01-01"

[parameters.target]
type = "column"

[parameters.features]
type = "columns"
min_items = 2
max_items = 4
"""
)


@pytest.fixture(scope="module")
def tpl() -> ProtocolTemplate:
    return parse_template(ALL_TYPES)


# ---------------------------------------------------------------- hash


def test_hash_is_sha256_of_canonical_json() -> None:
    expected_json = json.dumps(
        tomllib.loads(BASE), sort_keys=True, separators=(",", ":"), ensure_ascii=True
    )
    expected = "sha256:" + hashlib.sha256(expected_json.encode()).hexdigest()
    assert parse_template(BASE).canonical_hash == expected


def test_hash_ignores_comments_whitespace_and_key_order(tpl: ProtocolTemplate) -> None:
    reformatted = """
# a comment
[parameters.features]   # tables in another order
max_items   =   4
min_items = 2
type = 'columns'

[protocol]
version = 1
leakage = 'nothing'
analysis = "count"
title = "Demo"
name = "demo"
""" + ALL_TYPES.split("[parameters.features]")[0].split(BASE)[1]
    other = parse_template(reformatted)
    assert other.source_text != tpl.source_text
    assert other.canonical_hash == tpl.canonical_hash


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("max = 10", "max = 11"),
        ('choices = ["F", "M", "U"]', 'choices = ["F", "M"]'),
        ("version = 1", "version = 2"),
        ('leakage = "nothing"', 'leakage = "nothing at all"'),
        ('default = "2026-01-01"', 'default = "2025-01-01"'),
        ("min = 0.1", "min = 0.2"),
    ],
)
def test_hash_changes_on_semantic_change(tpl: ProtocolTemplate, old: str, new: str) -> None:
    assert old in ALL_TYPES
    assert parse_template(ALL_TYPES.replace(old, new, 1)).canonical_hash != tpl.canonical_hash


def test_shipped_protocol_parses() -> None:
    t = load_template(REPO / "protocols" / "rare_disease_count.toml")
    assert t.name == "rare_disease_count"
    assert t.analysis == "count" and t.backend == "mpyc"
    assert [p.name for p in t.parameters] == [
        "codes",
        "sex",
        "age",
        "as_of",
        "onset_from",
        "onset_to",
        "by",
        "epsilon",
        "max_sites",
        "dedup",
        "dedup_bound",
    ]
    bound = t.bind({"codes": "E75.22"})
    assert bound["codes"] == ("E75.22",)
    assert bound["as_of"] == dt.date(2026, 1, 1)
    assert bound["sex"] is None
    assert bound["epsilon"] is None  # an exact run unless epsilon is given
    assert t.canonical_hash.startswith("sha256:") and len(t.canonical_hash) == 71


# ---------------------------------------------------------------- template errors


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (BASE + "extra = 1\n", "unknown key(s) extra"),
        (BASE.replace("[protocol]", "[protocl]"), "unknown top-level key(s) protocl"),
        (BASE.replace('title = "Demo"\n', ""), "missing title"),
        (BASE.replace('leakage = "nothing"\n', ""), "missing leakage"),
        (BASE.replace("version = 1", "version = 0"), "version must be an integer >= 1"),
        (BASE.replace('name = "demo"', 'name = "Demo Study"'), "name 'Demo Study'"),
        (BASE + 'backend = "spdz"\n', "backend 'spdz'"),
        (BASE + '[parameters.x]\ntype = "blob"\n', "unknown or missing type 'blob'"),
        (BASE + '[parameters.x]\ntype = "int"\nmin_items = 1\n', "unknown key(s) min_items"),
        (BASE + '[parameters.x]\ntype = "int"\nmax = 1\nmin = 5\n', "min 5 is greater than"),
        (BASE + '[parameters.x]\ntype = "int"\nmax = 5\ndefault = 9\n', "bad default"),
        (BASE + '[parameters.x]\ntype = "int"\nmin = 1.5\n', "min must be"),
        (BASE + '[parameters.x]\ntype = "date"\ndefault = 2026-01-01\n', "quoted string"),
        (BASE + '[parameters.x]\ntype = "date"\nmin = "2026-13-01"\n', "min must be"),
        (BASE + '[parameters.x]\ntype = "choice"\nchoices = []\n', "choices must be"),
        (BASE + '[parameters.x]\ntype = "choice"\nchoices = ["a,b"]\n', "without commas"),
        (BASE + '[parameters.x]\ntype = "choice"\nchoices = ["a", "a"]\n', "not repeat"),
        (
            BASE + '[parameters.x]\ntype = "codes"\nrequired = true\ndefault = "E84"\n',
            "required parameter cannot have a default",
        ),
        (BASE + '[parameters.x]\ntype = "float"\nmax = nan\n', "nan"),
        (BASE + '[parameters.x-y]\ntype = "int"\n', "identifiers"),
        ("[protocol\n", "invalid TOML"),
    ],
)
def test_invalid_templates(text: str, expected: str) -> None:
    with pytest.raises(TemplateError) as info:
        parse_template(text, "my.toml")
    assert expected in str(info.value)
    assert str(info.value).startswith("my.toml: ")


NESTED = 3000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # tomllib itself recurses once per level of these
        (
            BASE + '[parameters.x]\ntype = "int"\ndeep = ' + "[" * NESTED + "]" * NESTED,
            "invalid TOML: arrays or tables nested too deeply",
        ),
        (
            BASE + '[parameters.x]\ntype = "int"\ndeep = ' + "{a=" * NESTED + "1" + "}" * NESTED,
            "invalid TOML: arrays or tables nested too deeply",
        ),
        # a deep header parses without recursion; our checks must not recurse through it
        (
            BASE + "[parameters.x" + ".a" * NESTED + ']\ntype = "int"\n',
            "parameters.x.a.a.a.a.a.a.a: tables or arrays nested deeper than 8 levels",
        ),
        (
            BASE + "deep = " + "[" * 9 + "1" + "]" * 9 + "\n",
            "protocol.deep: tables or arrays nested deeper than 8 levels",
        ),
    ],
)
def test_deeply_nested_templates_are_template_errors(
    tmp_path: Path, text: str, expected: str
) -> None:
    with pytest.raises(TemplateError) as info:
        parse_template(text, "deep.toml")
    assert str(info.value) == f"deep.toml: {expected}"
    path = tmp_path / "deep.toml"
    path.write_text(text)
    with pytest.raises(TemplateError, match=f"^{path}: "):
        load_template(path)


def test_load_missing_template(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="not found"):
        load_template(tmp_path / "none.toml")


# ---------------------------------------------------------------- binding


def test_bind_converts_every_type(tpl: ProtocolTemplate) -> None:
    bound = tpl.bind(
        {
            "codes": " e75.22 ,E84.*, E75.2* ",
            "sex": "F",
            "by": "site,sex",
            "k": "7",
            "eps": "0.5",
            "age": "40 - 65",
            "as_of": "2024-02-29",
            "target": "outcome",
            "features": "age,bmi,age",
        }
    )
    assert dict(bound) == {
        "codes": ("E75.22", "E84.*", "E75.2*"),
        "sex": "F",
        "by": ("site", "sex"),
        "k": 7,
        "eps": 0.5,
        "age": (40, 65),
        "as_of": dt.date(2024, 2, 29),
        "target": "outcome",
        "features": ("age", "bmi"),
    }


def test_bind_accepts_python_values(tpl: ProtocolTemplate) -> None:
    bound = tpl.bind(
        {
            "codes": ["E84"],
            "by": ("sex",),
            "k": 2,
            "eps": 1,
            "age": (0, 120),
            "as_of": dt.date(2000, 1, 1),
            "features": ["a", "b"],
        }
    )
    assert bound["codes"] == ("E84",)
    assert bound["eps"] == 1.0 and isinstance(bound["eps"], float)
    assert bound["age"] == (0, 120)
    assert bound["sex"] is None and bound["target"] is None  # optional, absent


def test_defaults_apply(tpl: ProtocolTemplate) -> None:
    bound = tpl.bind({"codes": "E84"})
    assert bound["k"] == 3
    assert bound["as_of"] == dt.date(2026, 1, 1)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({}, "parameter 'codes' is required"),
        ({"codes": "E84", "nope": "1"}, "unknown parameter(s) nope"),
        ({"codes": "E84", "k": "11"}, "'k' (int): 11 is out of bounds; allowed: between 2 and 10"),
        ({"codes": "E84", "k": "1"}, "between 2 and 10"),
        ({"codes": "E84", "k": "2.5"}, "'k' (int): '2.5' is not an integer"),
        ({"codes": "E84", "k": True}, "is not an integer"),
        ({"codes": "E84", "eps": "3"}, "'eps' (float): 3.0 is out of bounds; allowed: between 0.1"),
        ({"codes": "E84", "eps": "inf"}, "not a finite number"),
        ({"codes": "E84", "eps": "x"}, "not a number"),
        ({"codes": "E84", "age": "0-121"}, "'age' (int_range): 0-121 is out of bounds"),
        ({"codes": "E84", "age": "-1-5"}, "between 0 and 120"),
        ({"codes": "E84", "age": "65-40"}, "is empty"),
        ({"codes": "E84", "age": "40"}, "not a range"),
        ({"codes": "E84", "as_of": "1999-12-31"}, "between 2000-01-01 and 2030-12-31"),
        ({"codes": "E84", "as_of": "2026-02-30"}, "not a valid date"),
        ({"codes": "E84", "as_of": "20260101"}, "not a date YYYY-MM-DD"),
        ({"codes": "E84", "as_of": dt.datetime(2026, 1, 1)}, "date-time"),
        ({"codes": "E84", "sex": "X"}, "'sex' (choice): 'X' is not allowed; expected one of F, M"),
        ({"codes": "E84", "sex": "f"}, "not allowed"),
        ({"codes": "E84", "by": "sex,region"}, "'region' is not allowed"),
        ({"codes": "E84", "by": "sex,age_band,site"}, "'by' (choices): allows at most 2 item(s)"),
        ({"codes": "E84,E85,E86,E87"}, "at most 3"),
        ({"codes": "E84,,E85"}, "empty item"),
        ({"codes": "E75."}, "'E75.' is not an ICD-10 code"),
        ({"codes": "75.22"}, "not an ICD-10 code"),
        ({"codes": "E75.22; DROP"}, "not an ICD-10 code"),
        ({"codes": []}, "at least 1"),
        ({"codes": "E84", "target": "1abc"}, "not a column name"),
        ({"codes": "E84", "features": "age"}, "'features' (columns): needs at least 2"),
        ({"codes": "E84", "features": "age,bmi-2"}, "not a column name"),
    ],
)
def test_bind_rejects(tpl: ProtocolTemplate, raw: dict[str, Any], expected: str) -> None:
    with pytest.raises(TemplateError) as info:
        tpl.bind(raw)
    assert expected in str(info.value)
    assert "protocol 'demo'" in str(info.value)


@pytest.mark.parametrize("code", ["E75.2", "E75.22", "E84", "E84.*", "C4A.0", "Z99.81", "E75*"])
def test_valid_codes(tpl: ProtocolTemplate, code: str) -> None:
    assert tpl.bind({"codes": code.lower()})["codes"] == (code,)


# ---------------------------------------------------------------- wire encoding


def test_encode_then_bind_round_trips(tpl: ProtocolTemplate) -> None:
    raw = {
        "codes": "e84,E75.22",
        "sex": "U",
        "by": "age_band",
        "eps": "0.30000000000000004",
        "age": "18-18",
        "target": "y",
        "features": ["x1", "x2"],
    }
    bound = tpl.bind(raw)
    wire = bound.encode()
    assert all(isinstance(v, str) for v in wire.values())
    assert wire["codes"] == "E84,E75.22"  # normalised
    assert wire["age"] == "18-18"
    assert wire["as_of"] == "2026-01-01"  # defaults are sent explicitly
    assert "target" in wire and "sex" in wire
    assert tpl.bind(wire) == bound


def test_encode_params_of_python_values(tpl: ProtocolTemplate) -> None:
    wire = encode_params(
        {
            "codes": ["E84", "E75.22"],
            "age": (40, 65),
            "as_of": dt.date(2026, 3, 1),
            "k": 4,
            "eps": 0.5,
            "sex": None,
        }
    )
    assert wire == {
        "codes": "E84,E75.22",
        "age": "40-65",
        "as_of": "2026-03-01",
        "k": "4",
        "eps": "0.5",
    }
    assert tpl.bind(wire)["age"] == (40, 65)
    with pytest.raises(TemplateError):
        encode_params({"flag": True})


def test_parse_set_options() -> None:
    assert parse_set_options(["codes=E75.22,E75.21", "age = 40-65", "x=a=b"]) == {
        "codes": "E75.22,E75.21",
        "age": "40-65",
        "x": "a=b",
    }
    for bad, expected in [
        ("codes", "expected NAME=VALUE"),
        ("=E84", "is not a parameter name"),
        ("codes=", "no value given"),
        ("1x=2", "is not a parameter name"),
    ]:
        with pytest.raises(TemplateError, match=expected):
            parse_set_options([bad])
    with pytest.raises(TemplateError, match="more than once"):
        parse_set_options(["k=1", "k=2"])
