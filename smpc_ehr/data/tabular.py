"""Reading one CSV or Parquet file and validating its columns, vectorised.

Every check builds a boolean mask over all rows and reports only the first offending
row, so a million-row file is validated in a few array passes instead of a Python loop.
Errors name the file, the position (CSV: 1-based line, the header is line 1; Parquet:
1-based data row) and the column, because hospital IT staff fix the file, not our code.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from smpc_ehr.errors import DataError

_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
_DATE = r"^\d{4}-\d{2}-\d{2}$"


@dataclass(frozen=True)
class Source:
    """Where a table came from, to turn a row index into a position people can find."""

    path: Path

    @property
    def is_csv(self) -> bool:
        return self.path.suffix == ".csv"

    def where(self, row: int | None) -> str:
        """Position of data row ``row`` (0-based); None means the header or schema."""
        if row is None:
            return "line 1 (header)" if self.is_csv else "schema"
        return f"line {row + 2}" if self.is_csv else f"row {row + 1}"

    def error(self, row: int | None, column: str | None, problem: str) -> DataError:
        col = f", column {column!r}" if column is not None else ""
        return DataError(f"{self.path}: {self.where(row)}{col}: {problem}")


def read_table(path: Path, required: tuple[str, ...], optional: tuple[str, ...] | None) -> pa.Table:
    """Read a CSV (every column as text) or Parquet file; check the required columns.

    ``optional`` lists the other columns to read; None reads every column.
    """
    src = Source(path)
    names = _csv_header(src) if src.is_csv else _parquet_header(src)
    for name in names:
        if not name:
            raise src.error(None, None, "a column has an empty name")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise src.error(None, dup[0], "column name appears more than once")
    for name in required:
        if name not in names:
            raise src.error(None, name, f"required column missing (found: {', '.join(names)})")
    keep = None if optional is None else set(required) | set(optional)
    wanted = [n for n in names if keep is None or n in keep]
    try:
        if not src.is_csv:
            return pq.read_table(path, columns=wanted)
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=1),
            parse_options=pacsv.ParseOptions(ignore_empty_lines=False),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in wanted},
                include_columns=wanted,
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, OSError) as exc:
        if src.is_csv:
            _raise_bad_bytes(src)
            _raise_ragged_line(src, len(names))
        raise DataError(f"{path}: cannot be read: {exc}") from exc
    _refuse_line_breaks(src, table)
    return table


_FAST_CHECK_BYTES = 1 << 28
"""Files up to 256 MB are read once more to count their line ends (see below)."""


def _one_line_per_row(src: Source, rows: int) -> bool:
    """True if the file has exactly one line per row plus the header, and no lone CR:
    then no value holds a line break. Counting bytes costs far less than a pass over
    every column, which is left for the files where this does not hold."""
    if src.path.stat().st_size > _FAST_CHECK_BYTES:
        return False
    data = src.path.read_bytes()
    lf, cr = data.count(b"\n"), data.count(b"\r")
    if cr and not cr == lf == data.count(b"\r\n"):
        return False
    lines = lf + (1 if data and not data.endswith(b"\n") else 0)
    return lines == rows + 1


def _refuse_line_breaks(src: Source, table: pa.Table) -> None:
    """A quoted value may hold a line break in CSV; we refuse it. No id, code, date or
    number has one, and a row spanning two lines would shift every later line number
    in our messages (which count one line per row)."""
    if _one_line_per_row(src, table.num_rows):
        return
    for column in table.column_names:
        values = table.column(column)
        if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
            continue
        values = values.combine_chunks().fill_null("")
        broken = _mask(pc.or_(pc.match_substring(values, "\n"), pc.match_substring(values, "\r")))
        if broken.any():
            raise src.error(
                first(broken),
                column,
                "a value holds a line break (inside quotes); every value must fit on its line",
            )
    # The line ends did not match the rows, but no column read holds a break: a column
    # this analysis does not read may (its rows would still shift our line numbers).
    row = _first_row_spanning_lines(src)
    if row is not None:
        raise src.error(
            row,
            None,
            "a value holds a line break (inside quotes); every value must fit on its line",
        )


def _first_row_spanning_lines(src: Source) -> int | None:
    """The first data row (0-based) that spans more than one line, by Python's csv
    reader (any mix of CRLF and LF line ends is one line end each); None if none."""
    with src.path.open(newline="", encoding="utf-8") as lines:
        reader = csv.reader(lines)
        previous = 0
        for index, _ in enumerate(reader):
            if reader.line_num - previous > 1:
                return index - 1
            previous = reader.line_num
    return None


def _parquet_header(src: Source) -> list[str]:
    try:
        return list(pq.read_schema(src.path).names)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{src.path}: not a readable Parquet file: {exc}") from exc


def _csv_header(src: Source) -> list[str]:
    try:
        with src.path.open(encoding="utf-8-sig", newline="") as fh:
            header = next(csv.reader(fh), None)
    except UnicodeDecodeError as exc:
        _raise_bad_bytes(src)
        raise src.error(None, None, f"not UTF-8 text: {exc}") from exc
    except csv.Error as exc:
        raise src.error(None, None, f"cannot be read: {exc}") from exc
    if not header:
        raise src.error(None, None, "empty file, expected a header line")
    return [h.strip() for h in header]


def _raise_bad_bytes(src: Source) -> None:
    """Slow path, only after a decoding failure: name the line, column and character of
    the first byte that is not UTF-8 (the text reader decodes whole blocks, so its error
    would otherwise point at the header)."""
    names: list[str] = []
    with src.path.open("rb") as fh:
        for number, line in enumerate(fh, start=1):  # b"\n" is never inside a UTF-8 character
            try:
                text = line.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                before = line[: exc.start].decode("utf-8")
                fields = next(csv.reader([before.removeprefix("\ufeff")]), None) or [""]
                where = "line 1 (header)" if number == 1 else f"line {number}"
                if len(fields) <= len(names):
                    where += f", column {names[len(fields) - 1]!r}"
                raise DataError(
                    f"{src.path}: {where}, character {len(before) + 1}: not UTF-8 text "
                    f"(byte {line[exc.start : exc.end].hex(' ')}: {exc.reason}); "
                    "save the file as UTF-8"
                ) from None
            if number == 1:
                names = [h.strip() for h in next(csv.reader([text]), [])]


def _raise_ragged_line(src: Source, n_columns: int) -> None:
    """Slow path, only after a parse failure: find the line with the wrong field count."""
    try:
        with src.path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh)
            next(reader, None)
            for fields in reader:
                if len(fields) != n_columns:
                    raise DataError(
                        f"{src.path}: line {reader.line_num}: expected {n_columns} fields, "
                        f"found {len(fields)}"
                    )
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{src.path}: cannot be read: {exc}") from exc


def first(mask: np.ndarray) -> int:
    """Index of the first True in a boolean mask that has one."""
    return int(np.argmax(mask))


def _mask(arr: pa.Array) -> np.ndarray:
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=bool)


def text(src: Source, table: pa.Table, column: str) -> pa.Array:
    """A column as trimmed text ('' for empty/null); Parquet integers are accepted as text."""
    arr = table.column(column).combine_chunks()
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if pa.types.is_integer(arr.type):
        arr = pc.cast(arr, pa.string())
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        raise src.error(None, column, f"expected text, found type {arr.type}")
    return pc.utf8_trim_whitespace(arr.fill_null(""))


def _empty(values: pa.Array) -> pa.Array:
    return pc.equal(pc.utf8_length(values), 0)


def _nulled(values: pa.Array) -> pa.Array:
    """Empty strings become nulls so casts treat them as missing."""
    return pc.if_else(_empty(values), pa.scalar(None, values.type), values)


def require_nonempty(src: Source, values: pa.Array, column: str) -> None:
    empty = _mask(_empty(values))
    if empty.any():
        raise src.error(first(empty), column, "empty value")


def check_pattern(src: Source, values: pa.Array, column: str, regex: str, what: str) -> None:
    """Every non-empty value must match ``regex``; name the first that does not."""
    ok = pc.or_(pc.match_substring_regex(values, regex), _empty(values))
    bad = ~_mask(ok)
    if bad.any():
        i = first(bad)
        raise src.error(i, column, f"{values[i].as_py()!r} is not {what}")


def categories(
    src: Source, values: pa.Array, column: str, regex: str, what: str
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct upper-cased values (sorted) and each row's index into them.

    Hashing the rows once and validating only the distinct values keeps a 3-million-row
    code column cheap; a bad value is traced back to its first row.
    """
    encoded = pc.dictionary_encode(values)
    indices = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    raw = pc.utf8_upper(encoded.dictionary)
    bad = ~_mask(pc.match_substring_regex(raw, regex))
    if bad.any():
        i = first(bad[indices])
        raise src.error(i, column, f"{values[i].as_py()!r} is not {what}")
    distinct = np.asarray(raw.to_pylist(), dtype=str)
    table, inverse = np.unique(distinct, return_inverse=True)
    if not len(table):
        table = np.empty(0, dtype="<U1")
    return table, inverse.astype(np.intp)[indices]


def dates(src: Source, table: pa.Table, column: str, allow_empty: bool) -> np.ndarray:
    """A date column as datetime64[D] (NaT where empty, if allowed); text must be YYYY-MM-DD."""
    arr = table.column(column).combine_chunks()
    if pa.types.is_date(arr.type) or pa.types.is_timestamp(arr.type):
        if not allow_empty and arr.null_count:
            raise src.error(first(_mask(arr.is_null())), column, "empty value")
        days = arr if pa.types.is_date32(arr.type) else pc.cast(arr, pa.date32())
        return np.asarray(days.to_numpy(zero_copy_only=False), dtype="datetime64[D]")
    values = text(src, table, column)
    if not allow_empty:
        require_nonempty(src, values, column)
    try:  # Arrow's cast accepts exactly YYYY-MM-DD calendar dates.
        parsed = pc.cast(_nulled(values), pa.date32())
    except pa.ArrowInvalid:
        check_pattern(src, values, column, _DATE, "a date in the form YYYY-MM-DD")
        i = _first_impossible_date(values)
        raise src.error(i, column, f"{values[i].as_py()!r} is not a calendar date") from None
    return np.asarray(parsed.to_numpy(zero_copy_only=False), dtype="datetime64[D]")


def _first_impossible_date(values: pa.Array) -> int:
    """Row of the first well-formed but impossible date (month 13, 30 February...)."""
    filled = pc.if_else(_empty(values), "2000-01-01", values)

    def part(start: int, stop: int) -> np.ndarray:
        piece = pc.utf8_slice_codeunits(filled, start, stop)
        return np.asarray(pc.cast(piece, pa.int64()).to_numpy(zero_copy_only=False))

    year, month, day = part(0, 4), part(5, 7), part(8, 10)
    month_ok = (month >= 1) & (month <= 12)
    start = (year - 1970).astype("datetime64[Y]").astype("datetime64[M]")
    start = start + np.clip(month - 1, 0, 11).astype("timedelta64[M]")
    next_start = (start + np.timedelta64(1, "M")).astype("datetime64[D]")
    length = (next_start - start.astype("datetime64[D]")).astype(np.int64)
    return first(~month_ok | (day < 1) | (day > length))


def numbers(src: Source, table: pa.Table, column: str) -> tuple[np.ndarray, bool]:
    """A numeric column as float64 (NaN = missing) and whether it is a 0/1 outcome.

    Outcome rule: the column is integer-typed in the file (CSV: every non-empty cell is
    written without a decimal point or exponent; Parquet: integer or boolean type) and
    all its non-missing values are 0 or 1, with at least one present.
    """
    arr = table.column(column).combine_chunks()
    if pa.types.is_boolean(arr.type):
        arr = pc.cast(arr, pa.int8())
    values = None
    if pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type):
        out = np.asarray(pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False), np.float64)
        empty = _mask(arr.is_null())
    elif pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        values = text(src, table, column)
        empty = _mask(_empty(values))
        try:
            parsed = pc.cast(_nulled(values), pa.float64())
        except pa.ArrowInvalid as exc:
            check_pattern(src, values, column, _NUMBER, "a number (extra columns are numeric)")
            raise src.error(None, column, f"cannot be read as numbers: {exc}") from exc
        out = np.asarray(parsed.to_numpy(zero_copy_only=False), np.float64)
    else:
        raise src.error(None, column, f"extra columns must be numeric, found type {arr.type}")
    # NaN written as text ("nan") is refused in CSV; in Parquet a NaN is a missing value.
    bad = np.isinf(out) | (np.isnan(out) & ~empty) if values is not None else np.isinf(out)
    if bad.any():
        raise src.error(first(bad), column, "value is not a finite number")
    return out, _is_outcome(out, arr.type, values)


def _is_outcome(out: np.ndarray, arrow_type: pa.DataType, values: pa.Array | None) -> bool:
    present = ~np.isnan(out)
    if not present.any() or not ((out == 0) | (out == 1) | ~present).all():
        return False
    if values is None:
        return bool(pa.types.is_integer(arrow_type))
    written_as_float = pc.or_(pc.match_substring(values, "."), pc.match_substring(values, "e"))
    written_as_float = pc.or_(written_as_float, pc.match_substring(values, "E"))
    return not _mask(written_as_float).any()
