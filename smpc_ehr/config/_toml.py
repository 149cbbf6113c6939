"""Small TOML helpers shared by the config loaders and writers.

Reading uses tomllib; every problem becomes a ConfigError that names the file and the
key, because the person fixing it is a hospital's IT staff, not us. Writing is done by
hand: our files are flat tables of strings, numbers and string lists, and a writer of
that shape is shorter than a dependency.
"""

from __future__ import annotations

import math
import os
import reprlib
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from smpc_ehr.errors import ConfigError

_MISSING: Any = object()
_SHOW = reprlib.Repr()
_SHOW.maxlevel, _SHOW.maxstring, _SHOW.maxother = 3, 80, 80


def show(value: object) -> str:
    """A value for an error message: repr, cut short (a nested table can be deep)."""
    return _SHOW.repr(value)


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """Parse a TOML file; a missing file or a syntax error names the file and what it is."""
    return read_toml_bytes(path, what)[0]


def read_toml_bytes(path: Path, what: str) -> tuple[dict[str, Any], bytes]:
    """The parsed file and the very bytes parsed (what a detached signature covers)."""
    try:
        data = path.read_bytes()
        return tomllib.loads(data.decode("utf-8")), data
    except FileNotFoundError:
        raise ConfigError(f"{what} file not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"{what} path is a folder, not a file: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text: {exc}") from None
    except RecursionError:  # tomllib recurses once per level of [[[...]]] or {a={...}}
        raise ConfigError(f"{path}: invalid TOML: arrays or tables nested too deeply") from None


class Table:
    """One TOML table read with typed getters; `done()` rejects keys nobody asked for.

    Rejecting unknown keys is deliberate: a typo such as `min_cel_count` must not
    silently fall back to a default in a privacy setting.
    """

    def __init__(self, data: Mapping[str, Any], where: str, path: Path) -> None:
        self._data = data
        self._where = where
        self._path = path
        self._seen: set[str] = set()

    def error(self, key: str, problem: str) -> ConfigError:
        """A ConfigError of the form `file: [section] key: problem`."""
        return ConfigError(f"{self._path}: {self._where} {key}: {problem}")

    def _get(self, key: str, default: Any) -> Any:
        self._seen.add(key)
        if key in self._data:
            return self._data[key]
        if default is _MISSING:
            raise ConfigError(f"{self._path}: {self._where} is missing the key '{key}'")
        return default

    def get_str(self, key: str, default: Any = _MISSING) -> Any:
        """A non-empty string (or the default when absent)."""
        value = self._get(key, default)
        if key not in self._data:
            return value
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, f"expected a non-empty string, got {show(value)}")
        return value

    def get_int(self, key: str, default: Any = _MISSING, *, minimum: int | None = None) -> Any:
        """An integer (booleans are not integers here), optionally with a lower bound."""
        value = self._get(key, default)
        if key not in self._data:
            return value
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"expected an integer, got {show(value)}")
        if minimum is not None and value < minimum:
            raise self.error(key, f"must be >= {minimum}, got {value}")
        return value

    def get_bool(self, key: str, default: Any = _MISSING) -> Any:
        """true or false (not 0 or 1, not a string)."""
        value = self._get(key, default)
        if key in self._data and not isinstance(value, bool):
            raise self.error(key, f"expected true or false, got {show(value)}")
        return value

    def get_number(self, key: str, default: Any = _MISSING, *, positive: bool = False) -> Any:
        """A finite int or float, returned as float."""
        value = self._get(key, default)
        if key not in self._data:
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(key, f"expected a number, got {show(value)}")
        if not math.isfinite(value):
            raise self.error(key, f"must be finite, got {show(value)}")
        if positive and value <= 0:
            raise self.error(key, f"must be > 0, got {show(value)}")
        return float(value)

    def get_str_list(self, key: str, default: Any = _MISSING) -> Any:
        """A list of non-empty strings, returned as a tuple."""
        value = self._get(key, default)
        if key not in self._data:
            return value
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise self.error(key, f"expected a list of non-empty strings, got {show(value)}")
        return tuple(value)

    def table(self, key: str) -> Table:
        """A required sub-table."""
        value = self._get(key, _MISSING)
        if not isinstance(value, dict):
            raise ConfigError(f"{self._path}: [{key}] must be a table, got {show(value)}")
        return Table(value, f"[{key}]", self._path)

    def optional_table(self, key: str) -> Table | None:
        """A sub-table, or None when absent."""
        return self.table(key) if key in self._data else self._get(key, None)

    def wrap(self, exc: Exception) -> ConfigError:
        """Re-raise a validation error with this table's file and section in front."""
        return ConfigError(f"{self._path}: {self._where}: {exc}")

    def table_list(self, key: str) -> list[Table]:
        """An array of tables ([[key]]), empty when absent."""
        value = self._get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise ConfigError(f"{self._path}: [[{key}]] must be an array of tables")
        return [Table(v, f"[[{key}]] entry {i + 1}", self._path) for i, v in enumerate(value)]

    def done(self) -> None:
        """Raise on keys that were never read: they are typos or unsupported settings."""
        unknown = sorted(set(self._data) - self._seen)
        if unknown:
            names = ", ".join(repr(k) for k in unknown)
            raise ConfigError(f"{self._path}: {self._where} has unknown key(s) {names}")


def root(data: Mapping[str, Any], path: Path) -> Table:
    """The top level of a file as a Table (its unknown keys are reported as tables)."""
    return Table(data, "top level", path)


def resolve(base: Path, value: str) -> Path:
    """A path from a config file: relative paths are relative to the file's folder."""
    p = Path(value).expanduser()
    return Path(os.path.normpath(p if p.is_absolute() else base / p))


# ---------------------------------------------------------------- writing


def toml_str(text: str) -> str:
    """A TOML basic string with every character that needs it escaped."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\u{code:04X}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def toml_value(value: object) -> str:
    """A TOML literal for a str, Path, bool, int, finite float or a list of those."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot write a non-finite float to TOML: {show(value)}")
        return repr(value)
    if isinstance(value, str):
        return toml_str(value)
    if isinstance(value, Path):
        return toml_str(value.as_posix())
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML: {show(value)}")


def toml_table(header: str, values: Mapping[str, object], *, array: bool = False) -> str:
    """One `[header]` (or `[[header]]`) block; None values are left out."""
    head = f"[[{header}]]" if array else f"[{header}]"
    lines = [head]
    lines += [f"{k} = {toml_value(v)}" for k, v in values.items() if v is not None]
    return "\n".join(lines) + "\n"


def toml_document(blocks: Iterable[str]) -> str:
    """Blocks joined by blank lines."""
    return "\n".join(blocks)


def rel(path: Path | str, base: Path) -> str:
    """How a path is written into a file in `base`: absolute paths become relative to it.

    Relative paths are written unchanged: they already mean "relative to the file".
    """
    p = Path(path)
    if not p.is_absolute():
        return p.as_posix()
    return Path(os.path.relpath(p, base.resolve())).as_posix()


def write_text(path: Path, text: str) -> Path:
    """Write a small text file, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
