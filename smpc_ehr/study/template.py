"""Study protocol templates: TOML files that parties approve by their canonical hash.

A template fixes which analysis runs, with which parameters and within which bounds.
Parties approve the template, not a query, so an analyst can fill in values (a
diagnosis code, an age range) without asking every hospital again, but never step
outside what was approved. The hash is taken over the parsed TOML as canonical JSON,
so reformatting, comments and key order do not change it and any change of content
does.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smpc_ehr.backend_names import BACKEND_NAMES
from smpc_ehr.errors import TemplateError
from smpc_ehr.study.params import BoundParameters, ParameterSpec, bind, parse_spec

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_PROTOCOL_KEYS = {"name", "title", "analysis", "version", "backend", "description", "leakage"}
_REQUIRED = ("name", "title", "analysis", "version", "leakage")


def canonical_json(data: Mapping[str, Any]) -> str:
    """The one JSON text of a parsed template that its hash is taken over."""
    return json.dumps(
        data, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    )


def hash_of(data: Mapping[str, Any]) -> str:
    """ "sha256:<hex>" of the canonical JSON."""
    return "sha256:" + hashlib.sha256(canonical_json(data).encode("ascii")).hexdigest()


MAX_DEPTH = 8
"""Deepest nesting of tables and arrays a template may have (the shipped ones use 3:
[parameters.NAME] choices = [...]); deeper trees are refused before anything walks them."""


def _reject_toml_dates(value: Any, where: str, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise TemplateError(
            f"{where or 'top level'}: tables or arrays nested deeper than {MAX_DEPTH} levels"
        )
    if isinstance(value, dt.date | dt.time):
        raise TemplateError(
            f"{where}: TOML date/time values are not allowed in templates; write the date "
            f'as a quoted string, e.g. "2026-01-01"'
        )
    if isinstance(value, dict):
        for k, v in value.items():
            _reject_toml_dates(v, f"{where}.{k}" if where else k, depth + 1)
    elif isinstance(value, list):
        for v in value:
            _reject_toml_dates(v, where, depth + 1)


@dataclass(frozen=True)
class ProtocolTemplate:
    """A parsed, checked protocol template; `source_text` is exactly what was parsed."""

    name: str
    title: str
    analysis: str
    version: int
    backend: str
    description: str
    leakage: str
    parameters: tuple[ParameterSpec, ...]
    source_text: str
    source: str = "<string>"

    @functools.cached_property
    def canonical_hash(self) -> str:
        """ "sha256:..." over the canonical JSON of the parsed TOML: what parties approve."""
        return hash_of(tomllib.loads(self.source_text))

    def parameter(self, name: str) -> ParameterSpec:
        """The spec of one parameter; TemplateError if the template has none by that name."""
        for spec in self.parameters:
            if spec.name == name:
                return spec
        raise TemplateError(f"protocol '{self.name}' has no parameter '{name}'")

    def bind(self, raw: Mapping[str, Any]) -> BoundParameters:
        """Validate and convert parameter values (strings or Python values) for one job."""
        try:
            return bind(self.parameters, raw)
        except TemplateError as exc:
            raise TemplateError(f"protocol '{self.name}': {exc}") from None


@functools.lru_cache(maxsize=64)
def parse_template(text: str, source: str = "<string>") -> ProtocolTemplate:
    """Parse and check a template's TOML text; TemplateError names the source and key.

    Cached: the same approved templates arrive with every job, and a template is
    immutable, so each distinct text is parsed once per process.
    """

    def fail(problem: str) -> TemplateError:
        return TemplateError(f"{source}: {problem}")

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise fail(f"invalid TOML: {exc}") from None
    except RecursionError:  # tomllib recurses once per level of [[[...]]] or {a={...}}
        raise fail("invalid TOML: arrays or tables nested too deeply") from None
    try:
        _reject_toml_dates(data, "")
        hash_of(data)  # rejects nan/inf, which have no canonical JSON
    except TemplateError as exc:
        raise fail(str(exc)) from None
    except ValueError:
        raise fail("nan and inf are not allowed in templates") from None

    unknown = sorted(set(data) - {"protocol", "parameters"})
    if unknown:
        raise fail(f"unknown top-level key(s) {', '.join(unknown)}")
    proto = data.get("protocol")
    if not isinstance(proto, dict):
        raise fail("missing [protocol] table")
    unknown = sorted(set(proto) - _PROTOCOL_KEYS)
    if unknown:
        raise fail(f"[protocol] has unknown key(s) {', '.join(unknown)}")
    missing = [k for k in _REQUIRED if k not in proto]
    if missing:
        raise fail(f"[protocol] is missing {', '.join(missing)}")
    for key in ("name", "title", "analysis", "backend", "description", "leakage"):
        if key in proto and not isinstance(proto[key], str):
            raise fail(f"[protocol] {key} must be a string")
    for key in ("name", "analysis"):
        if not _NAME.match(proto[key]):
            raise fail(f"[protocol] {key} {proto[key]!r} must be lowercase letters, digits, '_'")
    if not proto["title"].strip() or not proto["leakage"].strip():
        raise fail("[protocol] title and leakage must not be empty")
    version = proto["version"]
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise fail(f"[protocol] version must be an integer >= 1, got {version!r}")
    backend = proto.get("backend", "mpyc")
    if backend not in BACKEND_NAMES:
        raise fail(f"[protocol] backend {backend!r} is not one of {', '.join(BACKEND_NAMES)}")

    params = data.get("parameters", {})
    if not isinstance(params, dict):
        raise fail("[parameters] must be a table of [parameters.NAME] tables")
    try:
        specs = tuple(parse_spec(name, table) for name, table in params.items())
    except TemplateError as exc:
        raise fail(str(exc)) from None

    return ProtocolTemplate(
        name=proto["name"],
        title=proto["title"],
        analysis=proto["analysis"],
        version=version,
        backend=backend,
        description=proto.get("description", ""),
        leakage=proto["leakage"],
        parameters=specs,
        source_text=text,
        source=source,
    )


def load_template(path: Path | str) -> ProtocolTemplate:
    """Read a template file; a missing or unreadable file is a TemplateError too."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TemplateError(f"protocol template not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateError(f"cannot read protocol template {path}: {exc}") from None
    return parse_template(text, str(path))
