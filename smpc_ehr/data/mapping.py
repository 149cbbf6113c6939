"""Which measurements become a party's features, and which outcomes a source gives:
the `[features.<name>]` tables, `outcomes` and `as_of` of a `source.toml`
(docs/data.md, "Features and outcomes").

    as_of = 2026-01-01                 # optional; default cohort.DEFAULT_AS_OF
    outcomes = ["readmit_30d"]         # optional; the outcomes this source gives

    [features.hba1c]
    loinc = ["4548-4", "59261-8"]      # LOINC codes (OMOP measurement_source_value,
    concept_ids = [3004410]            #   FHIR Observation.code); OMOP concept ids
    unit = "%"                         # optional: the unit every value must carry
    decimals = 1                       # optional: round each value (required by convert)
    [features.hba1c.convert."59261-8"] # a code whose values are converted to the unit
    unit = "mmol/mol"
    scale = 0.09148                    # value * scale + offset
    offset = 2.152

The same table serves the OMOP (`omop_features`) and the FHIR (`fhir_features`) reader,
so a population written in both forms gives the same values.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from smpc_ehr.data.cohort import DEFAULT_AS_OF
from smpc_ehr.data.records import PartyData
from smpc_ehr.errors import DataError

OUTCOMES = ("readmit_30d",)
"""The outcomes a database or FHIR source can give (docs/data.md)."""
MAPPING_KEYS = ("as_of", "outcomes", "features")
"""The keys of `source.toml` this module reads, besides each kind's own."""
_FEATURE_KEYS = ("loinc", "concept_ids", "unit", "decimals", "convert")
_CONVERT_KEYS = ("unit", "scale", "offset")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LOINC = re.compile(r"^\d{1,7}-\d$")


@dataclass(frozen=True)
class Conversion:
    """Values of one code are `value * scale + offset` in the feature's unit."""

    unit: str | None
    scale: float
    offset: float


@dataclass(frozen=True)
class Feature:
    """One feature: the codes whose values it takes, their units and conversions."""

    name: str
    loinc: tuple[str, ...]
    concept_ids: tuple[int, ...]
    unit: str | None
    decimals: int | None
    convert: Mapping[str, Conversion]
    """By LOINC code, or by a concept id written as text."""

    def conversion(self, loinc: str | None, concept_id: int | None) -> Conversion | None:
        """The conversion of a value coded so (the LOINC code's first), or None."""
        if loinc is not None and loinc in self.convert:
            return self.convert[loinc]
        if concept_id is not None:
            return self.convert.get(str(concept_id))
        return None

    def expected_unit(self, loinc: str | None, concept_id: int | None) -> str | None:
        """The unit a value coded so must carry (None: not checked)."""
        conversion = self.conversion(loinc, concept_id)
        return conversion.unit if conversion is not None else self.unit

    def finish(self, value: float, conversion: Conversion | None) -> float:
        """The value converted and rounded to `decimals` (Python's `round`)."""
        if conversion is not None:
            value = value * conversion.scale + conversion.offset
        return value if self.decimals is None else round(value, self.decimals)


@dataclass(frozen=True)
class SourceMapping:
    """A source's feature mapping, outcomes and the day values are taken as of."""

    as_of: date
    features: tuple[Feature, ...]
    outcomes: tuple[str, ...]

    def by_loinc(self) -> dict[str, Feature]:
        """Each mapped LOINC code's feature."""
        return {code: f for f in self.features for code in f.loinc}


NO_MAPPING = SourceMapping(DEFAULT_AS_OF, (), ())


def with_columns(
    data: PartyData, features: dict[str, np.ndarray], outcomes: dict[str, np.ndarray]
) -> PartyData:
    """`data` (persons and conditions) with the mapped features and outcomes added."""
    return dataclasses.replace(data, features=features, outcomes=outcomes)


def parse_mapping(table: Mapping[str, Any], path: Path) -> SourceMapping:
    """The mapping keys of a parsed `source.toml` (`path` names the file in errors)."""
    as_of = table.get("as_of", DEFAULT_AS_OF)
    if isinstance(as_of, str):
        with contextlib.suppress(ValueError):  # refused below
            as_of = date.fromisoformat(as_of)
    if not isinstance(as_of, date) or hasattr(as_of, "hour"):
        raise DataError(f"{path}: as_of must be a date (e.g. as_of = 2026-01-01)")
    outcomes = table.get("outcomes", [])
    if not isinstance(outcomes, list) or any(o not in OUTCOMES for o in outcomes):
        raise DataError(f"{path}: outcomes must be a list of {', '.join(OUTCOMES)}")
    raw = table.get("features", {})
    if not isinstance(raw, dict):
        raise DataError(f"{path}: features must be tables [features.<name>]")
    features = tuple(_feature(name, spec, path) for name, spec in raw.items())
    seen: dict[object, str] = {}
    for f in features:
        if f.name in outcomes:
            raise DataError(f"{path}: {f.name} is both a feature and an outcome")
        for code in (*f.loinc, *f.concept_ids):
            if code in seen:
                raise DataError(f"{path}: code {code} is mapped to {seen[code]} and {f.name}")
            seen[code] = f.name
    return SourceMapping(as_of, features, tuple(dict.fromkeys(outcomes)))


def _feature(name: str, spec: Any, path: Path) -> Feature:
    where = f"{path}: [features.{name}]"
    if not _NAME.match(name):
        raise DataError(f"{where}: a feature name is letters, digits and _")
    if not isinstance(spec, dict):
        raise DataError(f"{where}: must be a table")
    unknown = sorted(set(spec) - set(_FEATURE_KEYS))
    if unknown:
        raise DataError(f"{where}: unknown key(s) {', '.join(unknown)}")
    loinc = spec.get("loinc", [])
    if not isinstance(loinc, list) or not all(
        isinstance(c, str) and _LOINC.match(c) for c in loinc
    ):
        raise DataError(f'{where}: loinc must be a list of LOINC codes like "4548-4"')
    concepts = spec.get("concept_ids", [])
    if not isinstance(concepts, list) or not all(_is_int(c) and c > 0 for c in concepts):
        raise DataError(f"{where}: concept_ids must be a list of positive integers")
    if not loinc and not concepts:
        raise DataError(f"{where}: give loinc codes or concept_ids")
    unit = spec.get("unit")
    if unit is not None and (not isinstance(unit, str) or not unit):
        raise DataError(f"{where}: unit must be a text")
    decimals = spec.get("decimals")
    if decimals is not None and (not _is_int(decimals) or not 0 <= decimals <= 6):
        raise DataError(f"{where}: decimals must be an integer 0..6")
    convert_raw = spec.get("convert", {})
    if not isinstance(convert_raw, dict):
        raise DataError(f"{where}: convert must be a table of codes")
    if convert_raw and decimals is None:
        raise DataError(
            f"{where}: a feature with convert needs decimals (the same rounding on every database)"
        )
    codes = {*loinc, *(str(c) for c in concepts)}
    convert = {}
    for code, conv in convert_raw.items():
        if code not in codes:
            raise DataError(f"{where}: convert.{code} is not one of its loinc codes or concept_ids")
        convert[code] = _conversion(conv, f'{where}: convert."{code}"')
    return Feature(name, tuple(loinc), tuple(concepts), unit, decimals, convert)


def _conversion(conv: Any, where: str) -> Conversion:
    if not isinstance(conv, dict):
        raise DataError(f"{where}: must be a table with scale, offset, unit")
    unknown = sorted(set(conv) - set(_CONVERT_KEYS))
    if unknown:
        raise DataError(f"{where}: unknown key(s) {', '.join(unknown)}")
    unit = conv.get("unit")
    if unit is not None and (not isinstance(unit, str) or not unit):
        raise DataError(f"{where}: unit must be a text")
    return Conversion(unit, _number(conv, "scale", where), _number(conv, "offset", where, 0.0))


def _number(table: dict[str, Any], key: str, where: str, default: float | None = None) -> float:
    value = table.get(key, default)
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise DataError(f"{where}: {key} must be a number")
    return float(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
