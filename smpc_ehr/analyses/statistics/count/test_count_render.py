"""The count's terminal table (the generic one): a real finalised result rendered
without the fallback."""

from __future__ import annotations

from tests._render import bind, released_counts, render, render_finalised


def test_a_real_finalised_stratified_count_renders() -> None:
    params = bind("rare_disease_count", codes="E11", by="sex")  # cells F, M, U
    lines = render_finalised("count", released_counts([1317, 1290, 4]), params).splitlines()
    assert lines[0].split() == ["sex", "patients"]
    assert lines[2].split() == ["F", "1,317"]
    assert lines[4] == "U    suppressed (< 11)"
    assert lines[5] == "small-cell threshold: 11"


def test_a_real_finalised_single_count_renders() -> None:
    params = bind("rare_disease_count", codes="E75.22")
    assert render_finalised("count", released_counts([42]), params).splitlines() == [
        "patients: 42",
        "small-cell threshold: 11",
    ]
    suppressed = render_finalised("count", released_counts([3]), params)
    assert suppressed.startswith("patients: suppressed (< 11)")
    assert render({"count": None, "suppressed": True, "threshold": 11}, "count") == suppressed


def test_a_deduplicated_count_renders_both_numbers() -> None:
    shown = {"count": 54, "suppressed": False, "shared": 30, "dedup": True, "threshold": 11}
    assert render(shown, "count").splitlines() == [
        "distinct patients: 54",
        "seen at more than one hospital: 30",
        "small-cell threshold: 11",
    ]
    hidden = {**shown, "shared": None}
    assert (
        render(hidden, "count").splitlines()[1]
        == "seen at more than one hospital: suppressed (< 11)"
    )


def test_a_deduplicated_table_renders_its_cells_and_the_shared_line() -> None:
    cells = [
        {"sex": "F", "count": 30, "suppressed": False},
        {"sex": "M", "count": 24, "suppressed": False},
        {"sex": "U", "count": None, "suppressed": True},
    ]
    result = {"by": ["sex"], "cells": cells, "shared": 30, "dedup": True, "threshold": 11}
    lines = render(result, "count").splitlines()
    assert lines[0].split() == ["sex", "patients"]
    assert lines[-2:] == ["seen at more than one hospital: 30", "small-cell threshold: 11"]
