"""The evaluation report (scripts/evaluate.py, issue 19): the tiny size of every section
(accuracy, overhead and scalability on real local federations; the privacy-utility
curves and re-identification risk on the in-process one) fills every table from
measured values, the raw JSON holds the numbers the tables show, and every figure is a
PNG; and, without a federation, a missing section is reported as not built yet."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from evaluation import report  # noqa: E402
from evaluation.section import Context, Figure, Section, Table  # noqa: E402

MINE = ("accuracy", "overhead", "scalability", "utility", "reidentification")
PNG = b"\x89PNG\r\n\x1a\n"


def numbers(value: Any) -> list[float]:
    """Every number in a JSON value, recursively."""
    if isinstance(value, bool) or value is None:
        return []
    if isinstance(value, int | float):
        return [float(value)]
    if isinstance(value, dict):
        return [n for v in value.values() for n in numbers(v)]
    if isinstance(value, list):
        return [n for v in value for n in numbers(v)]
    return []


def held(value: float, raw: list[float]) -> bool:
    """`value` (a table cell) is a raw figure or a raw fraction in percent, possibly
    rounded to the cell's decimals."""
    text = repr(value)
    decimals = len(text.split(".")[1]) if "." in text and "e" not in text else 0
    slack = 0.5 * 10.0**-decimals if decimals else 0.0
    return any(
        math.isclose(value, shown, rel_tol=1e-9, abs_tol=slack + 1e-12)
        for r in raw
        for shown in (r, 100.0 * r)
    )


@pytest.mark.slow
def test_tiny_report_fills_every_table_from_measured_values(tmp_path: Path) -> None:
    out = tmp_path / "report"
    command = [sys.executable, "scripts/evaluate.py", "--size", "tiny", "--out", str(out)]
    done = subprocess.run(
        [*command, "--sections", ",".join(MINE)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads((out / "figures.json").read_text())
    assert figures["header"]["size"] == "tiny"
    assert figures["header"]["machine"]["cpus"] >= 1
    markdown = (out / "report.md").read_text()
    page = (out / "report.html").read_text()
    assert "http://" not in page and "https://" not in page  # self-contained
    for name in MINE:
        section = figures["sections"][name]
        assert section["status"] == "ok", section
        raw = numbers(section["raw"])
        assert section["tables"], name
        for table in section["tables"]:
            assert table["rows"], f"{name}: {table['caption']} is empty"
            assert f"**{table['caption']}**" in markdown
            for row in table["rows"]:
                assert len(row) == len(table["headers"])
            for column, header in enumerate(table["headers"]):  # "-" only where n/a
                filled = [row[column] for row in table["rows"] if row[column] is not None]
                assert filled, f"{name}: {table['caption']}: column {header!r} is empty"
            for row in table["rows"]:
                assert sum(v is not None for v in row) > len(row) // 2, f"{name}: {row}"
                for value in numbers(row):
                    assert held(value, raw), f"{name}: {value} of {row} is not in the raw JSON"
        assert section["figures"], name
        for figure in section["figures"]:
            png = out / figure["path"]
            assert png.read_bytes()[:8] == PNG, png
            assert f"]({figure['path']})" in markdown
    assert page.count('src="data:image/png;base64,') == sum(
        len(figures["sections"][n]["figures"]) for n in MINE
    )
    accuracy = figures["sections"]["accuracy"]["raw"]
    exact = [r for r in accuracy["rows"] if r["analysis"] == "logistic" and not r["dp"]]
    assert exact and all(r["max_abs_coefficient_error"] < 1e-3 for r in exact)


def test_a_missing_section_is_reported_not_built_and_the_report_still_written(
    tmp_path: Path,
) -> None:
    outcome = report.run_section("no_such_section", Context(size="tiny", out=tmp_path))
    assert outcome.status == "not built yet" and outcome.section is None
    (tmp_path / "f.png").write_bytes(PNG + b"rest")
    built = report.Outcome(
        "demo",
        "ok",
        1.0,
        Section(
            "Demo",
            "Some text.",
            [Table("T", ["a", "b"], [["x", 0.5], ["y", None]], "a note")],
            [Figure("f.png", "a figure")],
            {"value": 0.5},
        ),
    )
    header = report.Header("tiny", 1, "now", report.machine(), report.versions(), "c", "cmd", [])
    report.write(tmp_path, header, [outcome, built])
    md = (tmp_path / "report.md").read_text()
    assert "Not built yet: `scripts/evaluation/no_such_section.py`" in md
    assert "| y | - |" in md and "![a figure](f.png)" in md
    assert 'src="data:image/png;base64,' in (tmp_path / "report.html").read_text()
    saved = json.loads((tmp_path / "figures.json").read_text())
    assert saved["sections"]["no_such_section"]["status"] == "not built yet"
    assert saved["sections"]["demo"]["raw"] == {"value": 0.5}
