"""How a benchmark prints its figures: plain-text tables (by rows, or by declared
columns), fixed-decimal cells, goal verdicts, and the closing JSON line."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def fixed(value: float | None, header: str, digits: int = 3) -> str:
    """A number with fixed decimals, right-aligned under its header (table() left-aligns
    text; its own float format rounds seconds of a small run to 0.00)."""
    return ("-" if value is None else f"{value:.{digits}f}").rjust(len(header))


def verdict(met: bool | None) -> str:
    return "-" if met is None else ("met" if met else "NOT met")


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table: text columns left-aligned, numbers right-aligned."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    numeric = [all(isinstance(row[i], int | float) for row in rows) for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in cells)])


@dataclass(frozen=True)
class Column:
    """One column of a printed table: its header, how a row gives its value, and how the
    value is shown: as `table` shows it (digits None), or with fixed decimals
    right-aligned under the header (`table`'s own float format rounds seconds of a
    small run to 0.00), "-" for None."""

    header: str
    value: Callable[[Any], Any]
    digits: int | None = None

    def cell(self, row: Any) -> object:
        value = self.value(row)
        return value if self.digits is None else fixed(value, self.header, self.digits)


def columns_table(columns: Sequence[Column], rows: Sequence[Any]) -> str:
    """`table` of some rows by their columns."""
    return table([c.header for c in columns], [[c.cell(r) for c in columns] for r in rows])


def per(value: float | None, unit: float) -> float | None:
    """`value` in another unit (None stays None)."""
    return None if value is None else value / unit


def key(name: str) -> Callable[[Any], Any]:
    return lambda row: row[name]


def seconds_of(summary: str, stat: str = "median_ms") -> Callable[[Any], Any]:
    """A row's timing summary `summary` (a `Summary.as_dict`, or None) in seconds."""
    return lambda row: None if row[summary] is None else row[summary][stat] / 1000


def time_columns(summary: str, what: str = "MPC") -> list[Column]:
    """A row's timing summary `summary` as its median and 90th percentile in seconds."""
    return [
        Column(f"{what} median s", seconds_of(summary), 3),
        Column(f"{what} p90 s", seconds_of(summary, "p90_ms"), 3),
    ]


def summary_columns(summary: str, digits: int) -> list[Column]:
    """A row's timing summary `summary` (or None) as its median, 90th percentile and
    minimum in seconds with `digits` decimals, and its number of samples."""
    return [
        Column("median s", seconds_of(summary), digits),
        Column("p90 s", seconds_of(summary, "p90_ms"), digits),
        Column("min s", seconds_of(summary, "min_ms"), digits),
        Column("n", lambda row: "-" if row[summary] is None else str(row[summary]["n"])),
    ]


def ratio_of(numerator: dict[str, Any] | None, denominator: dict[str, Any]) -> float | None:
    """The ratio of two timing summaries' medians, 3 decimals (None if no numerator)."""
    if numerator is None:
        return None
    return round(numerator["median_ms"] / denominator["median_ms"], 3)


def step_columns(sent_unit: str, local: bool = True) -> list[Column]:
    """The parties' logged steps of a row with `step_figures`: local step, MPC step,
    hops (sequential message rounds), messages and bytes sent (in KiB or MiB)."""
    columns = [Column("local step ms", key("local_step_ms"), 1)] if local else []
    divisor = {"KiB": 1024, "MiB": 2**20}[sent_unit]
    return [
        *columns,
        Column("MPC step ms", key("mpc_step_ms"), 1),
        Column("hops", key("hops"), 0),
        Column("messages", key("messages_per_party"), 0),
        Column(f"{sent_unit} sent", lambda r: per(r["bytes_sent_per_party"], divisor), 1),
    ]


def goal_column(goal_ratio: float, met: Callable[[Any], bool | None]) -> Column:
    return Column(f"goal <= {goal_ratio:g}", lambda r: verdict(met(r)))


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def load_line(setup: dict[str, Any]) -> str:
    """The machine's 1-minute load average before and after the jobs (other work on a
    shared machine skews the timings)."""
    before, after = setup["load_average_before_jobs"], setup["load_average_after_jobs"]
    return (
        f"load average (1 min) before / after the jobs: {before[0]:.2f} / {after[0]:.2f} "
        f"on {os.cpu_count()} CPUs"
    )


def goal_size_note(measured: int, stated: int) -> None:
    """Say so when a goal was measured at another size than the issue states it for."""
    if measured != stated:
        print(f"(the issue's goal is stated for {stated:,} patients per party)")


def finish_figures(figures: dict[str, Any], problems: list[str]) -> int:
    """Print each problem loudly, then a benchmark's closing JSON line (its figures,
    whether every result checked out, and the machine); return its exit status: 1 if
    any result did not."""
    for problem in problems:
        print(f"MISMATCH: {problem}")
    figures.update(check="mismatch" if problems else "ok", mismatches=problems, machine=machine())
    print(json_line(figures), flush=True)
    return 1 if problems else 0


def settings(cfg: Any) -> dict[str, Any]:
    """A benchmark's settings dataclass as JSON figures (paths as text)."""
    return {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(cfg).items()}


def json_line(figures: dict[str, Any]) -> str:
    """The one-line JSON object a benchmark ends with."""
    return json.dumps(figures, separators=(", ", ": "), sort_keys=False)


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    import platform

    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
    }
