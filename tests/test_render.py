"""The terminal tables of `smpc-ehr run` (no federation): number formats, the generic
fallback, the closed pipe, and that every analysis has a table of its own. Each
analysis's own render tests sit beside its package (test_<name>_render.py)."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys

from smpc_ehr.analyses import ANALYSES
from smpc_ehr.analyses.base import Analysis
from smpc_ehr.analyses.common.text import fmt_column, fmt_count, fmt_num, fmt_p, footer
from smpc_ehr.cli.render import render_result
from tests._render import T, job
from tests.federations import PROTOCOLS, ROOT


def test_number_formats() -> None:
    assert fmt_count(8732, T) == "8,732"
    assert fmt_count(0, T) == "0"
    assert fmt_count(None, T) == "<11"
    assert fmt_num(26.74275) == "26.74"
    assert fmt_num(6.04496) == "6.045"
    assert fmt_num(124.389) == "124.4"
    assert fmt_num(0.0607136) == "0.06071"
    assert fmt_num(9.99996) == "10.00"  # rounding up does not add a digit
    assert fmt_num(1296.62) == "1,297"
    assert fmt_num(1391.04, grouping=False) == "1391"
    assert fmt_num(-0.55726) == "-0.5573"
    assert fmt_num(1.5e-5) == "1.500e-05"
    assert fmt_num(0.0) == "0"
    assert fmt_num(None) == fmt_num(float("nan")) == "NA"
    assert fmt_p(9.6e-60) == "< 1e-16"
    assert fmt_p(0.0123456) == "0.0123"
    assert fmt_p(0.5) == "0.5"
    assert fmt_p(2.3456e-7) == "2.35e-07"
    assert fmt_p(None) == "NA"


def test_column_formats() -> None:
    """One number of decimals per column, enough for 4 significant digits of each; a
    lone value as fmt_num prints it; scientific notation and NA kept."""
    assert fmt_column([-8.546, 0.02797, 0.3392]) == ["-8.54600", "0.02797", "0.33920"]
    assert fmt_column([1.943e-4, 1.028, 0.9984]) == ["1.943e-04", "1.0280", "0.9984"]
    assert fmt_column([26.6, 135.83, None, 0.0, 12345.678]) == [
        "26.60", "135.83", "NA", "0.00", "12,345.68"
    ]  # fmt: skip
    for x in (26.74275, 0.0607136, 1296.62, 1.5e-5, 0.0, None):
        assert fmt_column([x]) == [fmt_num(x)]
    assert fmt_column([]) == []


def test_every_table_groups_thousands() -> None:
    """No number of 4 or more integer digits without thousands separators in any
    analysis's table (the tidy tests' real finalised results, rendered strictly)."""
    from tests.test_tidy import CASES

    for name, make in CASES.items():
        text = render_result(job(make()), name, strict=True).split("\n", 1)[1]
        ungrouped = re.findall(r"(?<![\w.,-])-?\d{4,}(?![\d,])", text)
        assert not ungrouped, (name, ungrouped, text)


def test_every_analysis_has_a_renderer() -> None:
    """Every analysis but the self-test (generic output) has its own table (the count's
    falls back to the generic one except for a deduplicated count)."""
    own = {name for name, a in ANALYSES.items() if type(a).render is not Analysis.render}
    assert own == set(ANALYSES) - {"selftest"}


def test_counts_render_as_before() -> None:
    body = {
        "by": ["sex"],
        "cells": [
            {"sex": "F", "count": 1317, "suppressed": False},
            {"sex": "U", "count": None, "suppressed": True},
        ],
        "threshold": T,
    }
    for analysis in (None, "count"):
        lines = render_result(job(body, "rare_disease_count"), analysis).splitlines()
        assert lines[0] == "rare_disease_count on 3 parties (a, b, c), backend mpyc, 1.23 s"
        assert lines[1].split() == ["sex", "patients"]
        assert lines[3].split() == ["F", "1,317"]
        assert lines[4] == "U    suppressed (< 11)"
        assert lines[5] == "small-cell threshold: 11"
    single = render_result(job({"count": 42, "suppressed": False, "threshold": T}))
    assert single.splitlines()[1:] == ["patients: 42", "small-cell threshold: 11"]


def test_unknown_analysis_and_unexpected_shape_fall_back_to_key_value_lines() -> None:
    body = {"ok": True, "value": 3}
    assert render_result(job(body), "selftest").splitlines()[1:] == ["ok: True", "value: 3"]
    # A known analysis whose result lacks its fields is still printed, not lost.
    assert render_result(job(body), "histogram").splitlines()[1:] == ["ok: True", "value: 3"]


def test_closed_stdout_pipe_ends_quietly() -> None:
    read, write = os.pipe()
    os.close(read)  # the reader (e.g. `head -1`) is gone before anything is written
    try:
        done = subprocess.run(
            [sys.executable, "-m", "smpc_ehr", "protocol", "show", str(PROTOCOLS / "summary.toml")],
            cwd=ROOT,
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write)
    assert done.returncode == 141
    assert done.stderr == ""


def test_the_suppression_note_says_when_the_decision_was_on_a_noisy_count() -> None:
    exact = footer({"threshold": 11}, suppressed=True)
    assert exact.endswith("<11 = suppressed (fewer than 11 patients, not released)")
    noisy = footer({"threshold": 11, "dp": {"epsilon": 1.0}}, suppressed=True)
    assert "(a noisy count below 11 patients, not released)" in noisy


def test_the_data_each_party_read_is_named_under_the_table() -> None:
    result = dataclasses.replace(
        job({"count": 42, "suppressed": False, "threshold": T}),
        data_versions={"h2": "sha256:00ff", "h1": "postgresql snapshot 5:5: at 2026-12-06"},
    )
    last = render_result(result, "rare_disease_count").splitlines()[-1]
    assert last == "data read: h1 postgresql snapshot 5:5: at 2026-12-06, h2 sha256:00ff"
