"""What a section of the evaluation report returns, and what it is given.

A section module of scripts/evaluation/ defines `TITLE: str` and
`run(context: Context) -> Section`. It runs its experiments (on real local federations,
through benchsuite.harness), draws its figures as PNGs into `context.out` (matplotlib,
Agg), and returns its tables, figures and raw measured figures; report.py writes them.
Every number in a table is measured in this run (never quoted), except the columns that
compare with the survey, which say so in their header.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Size = Literal["tiny", "quick", "full"]
"""tiny: the test's (seconds per section); quick: under 5 minutes in all on 2 cores;
full: the committed report (docs/evaluation/)."""


@dataclass(frozen=True)
class Context:
    """What every section gets: the size, the report folder (figures go there), the
    base seed (each section derives its own seeds from it and reports them)."""

    size: Size
    out: Path
    seed: int = 20261206


@dataclass
class Table:
    """One table: a caption, column headers and rows of cells (numbers or text; None
    is printed as "-"), and a note saying what the numbers mean."""

    caption: str
    headers: list[str]
    rows: list[list[Any]]
    note: str = ""


@dataclass
class Figure:
    """One PNG in the report folder (`path` relative to it) with its caption."""

    path: str
    caption: str


@dataclass
class Section:
    """One section of the report: prose first, then tables and figures, and the raw
    measured figures (JSON-able) that went into them."""

    title: str
    text: str
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
