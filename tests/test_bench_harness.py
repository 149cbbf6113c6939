"""The benchmark harness (scripts/benchsuite/harness.py) without a federation: the order
of the alternating repeats, the timing summary and the printed columns."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

from benchsuite import harness as h
from benchsuite import report, timings


def test_alternate_warms_up_then_alternates_which_side_goes_first() -> None:
    calls: list[tuple[str, str, bool]] = []

    def pair(name: str) -> h.Pair:
        return h.Pair(
            name,
            lambda timed_run: calls.append((name, "mpc", timed_run)),
            lambda timed_run: calls.append((name, "baseline", timed_run)),
        )

    h.alternate([pair("a"), pair("b")], warmup=1, repeats=2, tag="[t]", settle_seconds=0.0)
    assert calls == [
        ("a", "mpc", False),
        ("a", "baseline", False),
        ("b", "mpc", False),
        ("b", "baseline", False),
        ("a", "mpc", True),
        ("a", "baseline", True),
        ("b", "mpc", True),
        ("b", "baseline", True),
        ("a", "baseline", True),
        ("a", "mpc", True),
        ("b", "baseline", True),
        ("b", "mpc", True),
    ]


def test_alternate_skips_a_failed_pair() -> None:
    calls: list[str] = []
    failed = h.Pair("x", lambda t: calls.append("mpc"), lambda t: calls.append("b"), lambda: True)
    h.alternate([failed], warmup=2, repeats=3, tag="[t]", settle_seconds=0.0)
    assert calls == []


def test_summary_median_and_interpolated_p90_in_ms() -> None:
    s = timings.Summary.of([0.001, 0.002, 0.003, 0.004])
    assert (s.n, s.median_ms, s.min_ms) == (4, 2.5, 1.0)
    assert abs(s.p90_ms - 3.7) < 1e-9


def test_columns_print_fixed_decimals_and_dashes() -> None:
    rows = [
        {"backend": "mpyc", "mpc": {"median_ms": 1234.5, "p90_ms": 2000.0}, "ratio": 12.5},
        {"backend": "crypten", "mpc": None, "ratio": 3.0},
    ]
    columns = [
        report.Column("backend", report.key("backend")),
        *report.time_columns("mpc"),
        report.Column("ratio", report.key("ratio")),
        report.goal_column(5.0, lambda r: r["ratio"] <= 5.0),
    ]
    assert report.columns_table(columns, rows).splitlines() == [
        "backend  MPC median s  MPC p90 s  ratio  goal <= 5",
        "-------  ------------  ---------  -----  ---------",
        "mpyc            1.234      2.000   12.5  NOT met",
        "crypten             -          -   3.00  met",
    ]
