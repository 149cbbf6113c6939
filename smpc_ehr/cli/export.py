"""Tidy exports of a released result: `smpc-ehr run --csv FILE`, and the same rows for
Python users.

    from smpc_ehr.cli.export import tidy_rows, write_csv
    rows = tidy_rows(result)          # result: a JobResult from Client.run
    write_csv(rows, "result.csv")

One row per estimate, the columns of `analyses/common/tidy.COLUMNS` (docs/analyses.md,
"Exports"); each analysis gives its rows (`Analysis.tidy`), an unknown one the
generic rows (a row per number of the result).
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from smpc_ehr.analyses import ANALYSES
from smpc_ehr.analyses.common.tidy import COLUMNS, Row, generic_rows, result_rows
from smpc_ehr.client import JobResult


def tidy_rows(result: JobResult, analysis: str | None = None) -> list[Row]:
    """The result's tidy rows; `analysis` defaults to the one the result names."""
    name = analysis or result.analysis
    registered = ANALYSES.get(name)
    body = result.result
    rows = generic_rows(body) if registered is None else registered.tidy(body)
    return result_rows(name or result.protocol, rows, body)


def _cell(value: Any) -> str:
    """CSV text: empty for null, true/false, full precision for floats."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def csv_text(rows: Iterable[Row]) -> str:
    """The rows as CSV (a header line, then one line per row; RFC 4180 quoting)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in rows:
        writer.writerow([_cell(r.get(column)) for column in COLUMNS])
    return out.getvalue()


def write_csv(rows: Iterable[Row], path: str | Path) -> None:
    """Write the rows to `path` ("-": standard output)."""
    text = csv_text(rows)
    if str(path) == "-":
        sys.stdout.write(text)
    else:
        Path(path).write_text(text, encoding="utf-8")
