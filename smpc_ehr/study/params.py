"""Parameter specifications of study protocol templates, and binding values to them.

A template declares typed parameters with bounds; a party approves the template (by
hash) and thereby the bounds. Values arrive as strings (the CLI's `--set name=value`,
or the wire), so every type has one canonical string form: `encode` writes it and
`parse` reads it back, and what the coordinator forwards is exactly what each party
re-validates.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from smpc_ehr.errors import TemplateError

TYPES = (
    "codes",
    "choice",
    "choices",
    "int",
    "float",
    "numbers",
    "int_range",
    "date",
    "column",
    "columns",
)

_CODE = re.compile(r"^[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?(\.?\*)?$")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_INT = re.compile(r"^[+-]?[0-9]+$")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_RANGE = re.compile(r"^\s*([+-]?[0-9]+)\s*-\s*([+-]?[0-9]+)\s*$")

_LIST_TYPES = ("codes", "choices", "columns")
"""List types whose items are strings (`numbers` is a list of floats)."""
# Which spec keys each type accepts besides type, required, default and help.
_TYPE_KEYS: dict[str, frozenset[str]] = {
    "codes": frozenset({"min_items", "max_items"}),
    "choice": frozenset({"choices"}),
    "choices": frozenset({"choices", "min_items", "max_items"}),
    "int": frozenset({"min", "max"}),
    "float": frozenset({"min", "max"}),
    "numbers": frozenset({"min", "max", "min_items", "max_items"}),
    "int_range": frozenset({"min", "max"}),
    "date": frozenset({"min", "max", "resolution"}),
    "column": frozenset(),
    "columns": frozenset({"min_items", "max_items"}),
}
_COMMON_KEYS = frozenset({"type", "required", "default", "help"})
DATE_RESOLUTIONS = ("day", "month", "year")
"""A date parameter's public resolution (spec key `resolution`, default "day"): "month"
takes only the first day of a month, "year" only 1 January. A template coarsens a
parameter whose day-level values would let two allowed queries differ by the few
patients of one day (a tracker: `as_of` one day apart isolates who was born that day);
with month resolution, neighbouring values differ by a month's patients instead."""


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class ParameterSpec:
    """One declared parameter: its type, whether it is required, default and bounds."""

    name: str
    type: str
    required: bool = False
    default: Any = None
    help: str = ""
    choices: tuple[str, ...] | None = None
    min: Any = None
    max: Any = None
    min_items: int | None = None
    max_items: int | None = None
    resolution: str = "day"
    """Dates only: one of DATE_RESOLUTIONS."""

    def _fail(self, problem: str) -> TemplateError:
        return TemplateError(f"parameter '{self.name}' ({self.type}): {problem}")

    def bounds_text(self) -> str:
        """The allowed values in words, for error messages and help."""
        if self.choices is not None:
            return "one of " + ", ".join(self.choices)
        lo = "-inf" if self.min is None else str(self.min)
        hi = "+inf" if self.max is None else str(self.max)
        grid = {"month": ", the first day of a month", "year": ", a 1 January"}
        return f"between {lo} and {hi}{grid.get(self.resolution, '')}"

    # ------------------------------------------------------------ parsing

    def parse(self, raw: object) -> Any:
        """Convert a raw value (string from the CLI/wire, or a Python value) and check it."""
        parser = getattr(self, f"_parse_{self.type}")
        return parser(raw)

    def _items(self, raw: object) -> list[str]:
        if isinstance(raw, str):
            items = [s.strip() for s in raw.split(",")]
        elif isinstance(raw, list | tuple):
            if not all(isinstance(s, str) for s in raw):
                raise self._fail(f"expected strings, got {list(raw)!r}")
            items = [s.strip() for s in raw]
        else:
            raise self._fail(f"expected a comma-separated string or a list, got {raw!r}")
        if any(not s for s in items):
            raise self._fail(f"empty item in {raw!r}")
        # Sets of names lose repeats; numbers keep them (centroids may share a value).
        unique = items if self.type == "numbers" else list(dict.fromkeys(items))
        lo, hi = self.min_items or 1, self.max_items
        if len(unique) < lo:
            raise self._fail(f"needs at least {lo} item(s), got {len(unique)}")
        if hi is not None and len(unique) > hi:
            raise self._fail(f"allows at most {hi} item(s), got {len(unique)}")
        return unique

    def _parse_codes(self, raw: object) -> tuple[str, ...]:
        if isinstance(raw, list | tuple):
            raw = [s.upper() if isinstance(s, str) else s for s in raw]
        codes = self._items(raw.upper() if isinstance(raw, str) else raw)
        for code in codes:
            if not _CODE.match(code):
                raise self._fail(
                    f"{code!r} is not an ICD-10 code or prefix (examples: E75.22, E84, E84.*)"
                )
        return tuple(codes)

    def _parse_choice(self, raw: object) -> str:
        value = raw.strip() if isinstance(raw, str) else raw
        if value not in (self.choices or ()):
            raise self._fail(f"{raw!r} is not allowed; expected {self.bounds_text()}")
        assert isinstance(value, str)
        return value

    def _parse_choices(self, raw: object) -> tuple[str, ...]:
        items = self._items(raw)
        for item in items:
            if item not in (self.choices or ()):
                raise self._fail(f"{item!r} is not allowed; expected {self.bounds_text()}")
        return tuple(items)

    def _check_bounds(self, value: Any, shown: object) -> None:
        if (self.min is not None and value < self._bound(self.min)) or (
            self.max is not None and value > self._bound(self.max)
        ):
            raise self._fail(f"{shown} is out of bounds; allowed: {self.bounds_text()}")

    def _bound(self, bound: Any) -> Any:
        return dt.date.fromisoformat(bound) if self.type == "date" else bound

    def _to_int(self, raw: object) -> int:
        if _is_int(raw):
            assert isinstance(raw, int)
            return raw
        if isinstance(raw, str) and _INT.match(raw.strip()):
            return int(raw.strip())
        raise self._fail(f"{raw!r} is not an integer")

    def _parse_int(self, raw: object) -> int:
        value = self._to_int(raw)
        self._check_bounds(value, value)
        return value

    def _parse_float(self, raw: object) -> float:
        if _is_int(raw) or isinstance(raw, float):
            assert isinstance(raw, int | float)
            value = float(raw)
        elif isinstance(raw, str):
            try:
                value = float(raw.strip())
            except ValueError:
                raise self._fail(f"{raw!r} is not a number") from None
        else:
            raise self._fail(f"{raw!r} is not a number")
        if not math.isfinite(value):
            raise self._fail(f"{raw!r} is not a finite number")
        self._check_bounds(value, value)
        return value

    def _parse_numbers(self, raw: object) -> tuple[float, ...]:
        """A list of finite numbers, each within min..max, in the order given."""
        if isinstance(raw, list | tuple):
            raw = [repr(float(v)) if _is_int(v) or isinstance(v, float) else v for v in raw]
        return tuple(self._parse_float(item) for item in self._items(raw))

    def _parse_int_range(self, raw: object) -> tuple[int, int]:
        if isinstance(raw, str):
            match = _RANGE.match(raw)
            if not match:
                raise self._fail(f"{raw!r} is not a range 'LOW-HIGH' such as '40-65'")
            lo, hi = int(match.group(1)), int(match.group(2))
        elif isinstance(raw, list | tuple) and len(raw) == 2 and all(_is_int(v) for v in raw):
            lo, hi = raw
        else:
            raise self._fail(f"{raw!r} is not a range 'LOW-HIGH' or a pair of integers")
        if lo > hi:
            raise self._fail(f"range {lo}-{hi} is empty (low > high)")
        self._check_bounds(lo, f"{lo}-{hi}")
        self._check_bounds(hi, f"{lo}-{hi}")
        return (lo, hi)

    def _parse_date(self, raw: object) -> dt.date:
        if isinstance(raw, dt.datetime):
            raise self._fail(f"{raw!r} is a date-time; expected a date")
        if isinstance(raw, dt.date):
            value = raw
        elif isinstance(raw, str) and _DATE.match(raw.strip()):
            try:
                value = dt.date.fromisoformat(raw.strip())
            except ValueError:
                raise self._fail(f"{raw!r} is not a valid date") from None
        else:
            raise self._fail(f"{raw!r} is not a date YYYY-MM-DD")
        self._check_bounds(value, value.isoformat())
        self._check_resolution(value)
        return value

    def _check_resolution(self, value: dt.date) -> None:
        """TemplateError unless `value` is on the parameter's resolution, naming the
        nearest allowed values (those within the bounds)."""
        if self.resolution == "day":
            return
        if self.resolution == "month":
            below = value.replace(day=1)
            above = dt.date(below.year + below.month // 12, below.month % 12 + 1, 1)
            unit = "month (the first day of a month)"
        else:
            below = dt.date(value.year, 1, 1)
            above = dt.date(value.year + 1, 1, 1)
            unit = "year (1 January)"
        if value == below:
            return
        low = None if self.min is None else self._bound(self.min)
        high = None if self.max is None else self._bound(self.max)
        nearest = [
            d.isoformat()
            for d in (below, above)
            if (low is None or d >= low) and (high is None or d <= high)
        ]
        raise self._fail(
            f"{value.isoformat()} is not allowed: this template takes {self.name} to the "
            f"{unit}; nearest allowed: {' or '.join(nearest) or 'none within the bounds'}"
        )

    def _parse_column(self, raw: object) -> str:
        value = raw.strip() if isinstance(raw, str) else raw
        if not isinstance(value, str) or not _IDENT.match(value):
            raise self._fail(f"{raw!r} is not a column name (letters, digits, '_')")
        return value

    def _parse_columns(self, raw: object) -> tuple[str, ...]:
        items = self._items(raw)
        for item in items:
            if not _IDENT.match(item):
                raise self._fail(f"{item!r} is not a column name (letters, digits, '_')")
        return tuple(items)

    # ------------------------------------------------------------ encoding

    def encode(self, value: Any) -> str:
        """The canonical string of a parsed value; `parse(encode(v)) == v`."""
        if self.type in _LIST_TYPES:
            return ",".join(value)
        if self.type == "int_range":
            return f"{value[0]}-{value[1]}"
        if self.type == "date":
            return str(value.isoformat())
        if self.type == "float":
            return repr(float(value))
        if self.type == "numbers":
            return ",".join(repr(float(v)) for v in value)
        return str(value)


class BoundParameters(Mapping[str, Any]):
    """Immutable name -> typed value for one job; optional parameters left out are None."""

    def __init__(self, specs: Sequence[ParameterSpec], values: Mapping[str, Any]) -> None:
        self._specs = {s.name: s for s in specs}
        self._values = dict(values)

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"BoundParameters({self._values!r})"

    def encode(self) -> dict[str, str]:
        """The canonical wire form: name -> string, parameters without a value left out."""
        return {
            name: self._specs[name].encode(value)
            for name, value in self._values.items()
            if value is not None
        }


def bind(specs: Sequence[ParameterSpec], raw: Mapping[str, Any]) -> BoundParameters:
    """Check raw values against the specs and convert them; TemplateError names the problem."""
    known = {s.name for s in specs}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise TemplateError(
            f"unknown parameter(s) {', '.join(unknown)}; this protocol takes: "
            f"{', '.join(s.name for s in specs) or 'none'}"
        )
    values: dict[str, Any] = {}
    for spec in specs:
        if spec.name in raw and raw[spec.name] is not None:
            values[spec.name] = spec.parse(raw[spec.name])
        elif spec.required:
            raise TemplateError(f"parameter '{spec.name}' is required ({spec.help or spec.type})")
        elif spec.default is not None:
            values[spec.name] = spec.parse(spec.default)
        else:
            values[spec.name] = None
    return BoundParameters(specs, values)


def parse_spec(name: str, table: Mapping[str, Any]) -> ParameterSpec:
    """Build a ParameterSpec from a template's [parameters.NAME] table, checking it."""

    def fail(problem: str) -> TemplateError:
        return TemplateError(f"[parameters.{name}]: {problem}")

    if not _IDENT.match(name):
        raise fail("parameter names must be identifiers (letters, digits, '_')")
    if not isinstance(table, Mapping):
        raise fail("must be a table")
    ptype = table.get("type")
    if ptype not in TYPES:
        raise fail(f"unknown or missing type {ptype!r}; expected one of {', '.join(TYPES)}")
    unknown = sorted(set(table) - _COMMON_KEYS - _TYPE_KEYS[ptype])
    if unknown:
        raise fail(f"unknown key(s) {', '.join(unknown)} for type {ptype}")
    required = table.get("required", False)
    if not isinstance(required, bool):
        raise fail(f"required must be true or false, got {required!r}")
    help_text = table.get("help", "")
    if not isinstance(help_text, str):
        raise fail("help must be a string")
    default = table.get("default")
    if required and default is not None:
        raise fail("a required parameter cannot have a default")

    choices = table.get("choices")
    if ptype in ("choice", "choices"):
        if (
            not isinstance(choices, list)
            or not choices
            or not all(
                isinstance(c, str) and c and "," not in c and c == c.strip() for c in choices
            )
        ):
            raise fail("choices must be a non-empty list of strings without commas")
        if len(set(choices)) != len(choices):
            raise fail("choices must not repeat")
        choices = tuple(choices)

    lo, hi = table.get("min"), table.get("max")
    for key, bound in (("min", lo), ("max", hi)):
        if bound is None:
            continue
        ok = {
            "int": _is_int(bound),
            "int_range": _is_int(bound),
            "float": _is_int(bound) or isinstance(bound, float),
            "numbers": _is_int(bound) or isinstance(bound, float),
            "date": isinstance(bound, str) and bool(_DATE.match(bound)),
        }[ptype]
        if ptype in ("float", "numbers") and ok and not math.isfinite(bound):
            ok = False
        if ptype == "date" and ok:
            try:
                dt.date.fromisoformat(bound)
            except ValueError:
                ok = False
        if not ok:
            want = "a date string 'YYYY-MM-DD'" if ptype == "date" else f"a {ptype} bound"
            raise fail(f"{key} must be {want}, got {bound!r}")
    if lo is not None and hi is not None:
        a, b = (
            (dt.date.fromisoformat(lo), dt.date.fromisoformat(hi)) if ptype == "date" else (lo, hi)
        )
        if a > b:
            raise fail(f"min {lo} is greater than max {hi}")

    resolution = table.get("resolution", "day")
    if resolution not in DATE_RESOLUTIONS:
        raise fail(f"resolution must be one of {', '.join(DATE_RESOLUTIONS)}, got {resolution!r}")

    min_items, max_items = table.get("min_items"), table.get("max_items")
    for key, count in (("min_items", min_items), ("max_items", max_items)):
        if count is not None and (not _is_int(count) or count < 1):
            raise fail(f"{key} must be an integer >= 1, got {count!r}")
    if min_items is not None and max_items is not None and min_items > max_items:
        raise fail(f"min_items {min_items} is greater than max_items {max_items}")

    spec = ParameterSpec(
        name=name,
        type=ptype,
        required=required,
        default=default,
        help=help_text,
        choices=choices,
        min=lo,
        max=hi,
        min_items=min_items,
        max_items=max_items,
        resolution=resolution,
    )
    if default is not None:
        try:
            spec.parse(default)
        except TemplateError as exc:
            raise fail(f"bad default: {exc}") from None
    return spec


def parse_set_options(options: Sequence[str]) -> dict[str, str]:
    """Turn CLI `--set name=value` options into a dict; malformed ones raise TemplateError."""
    result: dict[str, str] = {}
    for option in options:
        name, sep, value = option.partition("=")
        name = name.strip()
        if not sep:
            raise TemplateError(f"--set {option!r}: expected NAME=VALUE, e.g. codes=E75.22")
        if not _IDENT.match(name):
            raise TemplateError(f"--set {option!r}: {name!r} is not a parameter name")
        if not value.strip():
            raise TemplateError(f"--set {option!r}: no value given for '{name}'")
        if name in result:
            raise TemplateError(f"--set {name}: given more than once")
        result[name] = value.strip()
    return result


def encode_params(raw: Mapping[str, Any]) -> dict[str, str]:
    """Strings for raw values given as Python objects (lists, ints, dates, (lo, hi)).

    Prefer `template.bind(raw).encode()`, which also validates and normalises; this is
    for callers that only need the wire's string shape.
    """
    out: dict[str, str] = {}
    for name, value in raw.items():
        if value is None:
            continue
        if isinstance(value, bool):
            raise TemplateError(f"parameter '{name}': booleans are not a parameter type")
        if isinstance(value, str):
            out[name] = value
        elif isinstance(value, dt.datetime):
            raise TemplateError(f"parameter '{name}': expected a date, got a date-time")
        elif isinstance(value, dt.date):
            out[name] = value.isoformat()
        elif isinstance(value, int):
            out[name] = str(value)
        elif isinstance(value, float):
            out[name] = repr(value)
        elif isinstance(value, list | tuple) and len(value) == 2 and all(map(_is_int, value)):
            out[name] = f"{value[0]}-{value[1]}"
        elif isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            out[name] = ",".join(value)
        elif isinstance(value, list | tuple) and all(
            _is_int(v) or isinstance(v, float) for v in value
        ):
            out[name] = ",".join(repr(float(v)) for v in value)
        else:
            raise TemplateError(f"parameter '{name}': cannot encode {value!r}")
    return out
