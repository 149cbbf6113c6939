"""Joint counts over real federations (3 and 5 party processes, mutual TLS) against
pandas on the pooled plaintext files; the same checks on the in-process federation
(tests/_inprocess.py), the fast tier."""

from __future__ import annotations

from pathlib import Path

import pytest

from smpc_ehr.client import Client
from smpc_ehr.testing.federation import InProcessFederation
from tests._truth import truth_counts
from tests.federations import COUNT_TEMPLATE

THRESHOLD = 11

CASES = [
    ({"codes": "E11"}, {}),
    ({"codes": "E11", "by": "sex,age_band"}, {"by": ("sex", "age_band")}),
    ({"codes": "I10,E78.5", "sex": "F", "age": "40-65"}, {"sex": "F", "age": (40, 65)}),
    (
        {"codes": "N18", "by": "age_band", "as_of": "2020-07-01"},
        {"by": ("age_band",), "as_of": "2020-07-01"},
    ),
    (
        {"codes": "E11.9", "onset_from": "2010-01-01", "onset_to": "2019-12-31", "by": "sex"},
        {"by": ("sex",), "onset": ("2010-01-01", "2019-12-31")},
    ),
    ({"codes": "E75.22"}, {}),
]


def released_cells(result: dict) -> dict[tuple[str, ...], dict]:
    if "cells" in result:
        return {tuple(c[b] for b in result["by"]): c for c in result["cells"]}
    return {(): result}


def check_against_truth(result: dict, truth: dict[tuple[str, ...], int]) -> tuple[int, int]:
    """Every cell: the exact total when >= threshold, else suppressed with no value."""
    cells = released_cells(result)
    assert set(cells) == set(truth)
    shown = hidden = 0
    for key, expected in truth.items():
        cell = cells[key]
        if expected >= THRESHOLD:
            assert cell == {**cell, "count": expected, "suppressed": False}, key
            shown += 1
        else:
            assert cell["count"] is None and cell["suppressed"] is True, (key, expected)
            hidden += 1
    return shown, hidden


@pytest.mark.parametrize("federation", ["fed3", "fed5"])
@pytest.mark.parametrize(("params", "truth_args"), CASES, ids=[str(c[0]) for c in CASES])
def test_counts_equal_pooled_plaintext(
    request: pytest.FixtureRequest, federation: str, params: dict, truth_args: dict
) -> None:
    fed = request.getfixturevalue(federation)
    data: Path = request.getfixturevalue("data" + federation[-1])
    with Client.from_state(fed.state_dir) as client:
        result = client.run(COUNT_TEMPLATE, params)
    assert result.backend == "mpyc"
    assert len(result.parties) == int(federation[-1])
    assert result.result["threshold"] == THRESHOLD
    truth = truth_counts(data, params["codes"].split(","), **truth_args)
    check_against_truth(result.result, truth)


def test_stratified_table_releases_large_and_suppresses_small_cells(fed3, data3) -> None:
    with Client.from_state(fed3.state_dir) as client:
        result = client.run(COUNT_TEMPLATE, {"codes": "E11", "by": "sex,age_band"})
        status = client.status(result.job_id)
    truth = truth_counts(data3, ["E11"], by=("sex", "age_band"))
    shown, hidden = check_against_truth(result.result, truth)
    assert shown > 0 and hidden > 0, "the case must exercise both released and suppressed cells"
    # The coordinator's stored view of the job (what any analyst can fetch) is the same
    # released table: suppressed cells carry no value there either.
    assert status["result"] == result.result
    for cell in status["result"]["cells"]:
        if cell["suppressed"]:
            assert cell["count"] is None
            assert set(cell) == {"sex", "age_band", "count", "suppressed"}


def test_small_total_is_suppressed(fed3, data3) -> None:
    # A code no synthetic patient has: the total 0 is below the threshold.
    with Client.from_state(fed3.state_dir) as client:
        result = client.run(COUNT_TEMPLATE, {"codes": "Q99.9"})
    assert truth_counts(data3, ["Q99.9"]) == {(): 0}
    assert result.result == {"count": None, "suppressed": True, "threshold": THRESHOLD}


def test_small_nonzero_total_is_suppressed(fed3, data3) -> None:
    # The case suppression exists for: a few patients, not none.
    total = truth_counts(data3, ["E75.2"])[()]
    assert 1 <= total < THRESHOLD, "the synthetic data must give a small nonzero total here"
    with Client.from_state(fed3.state_dir) as client:
        result = client.run(COUNT_TEMPLATE, {"codes": "E75.2"})
    assert result.result == {"count": None, "suppressed": True, "threshold": THRESHOLD}


# ------------------------------------------------------------------ in process (fast tier)


@pytest.mark.parametrize(("params", "truth_args"), CASES, ids=[str(c[0]) for c in CASES])
def test_counts_equal_pooled_plaintext_in_process(
    inprocess: InProcessFederation, data3: Path, params: dict, truth_args: dict
) -> None:
    result = inprocess.run(COUNT_TEMPLATE, params).result
    assert result["threshold"] == THRESHOLD
    check_against_truth(result, truth_counts(data3, params["codes"].split(","), **truth_args))


def test_a_small_nonzero_count_is_suppressed_in_process(
    inprocess: InProcessFederation, data3: Path
) -> None:
    assert 1 <= truth_counts(data3, ["E75.2"])[()] < THRESHOLD
    result = inprocess.run(COUNT_TEMPLATE, {"codes": "E75.2"}).result
    assert result == {"count": None, "suppressed": True, "threshold": THRESHOLD}


def test_the_threshold_is_the_largest_minimum_of_the_hospitals(data3: Path) -> None:
    strict = InProcessFederation.from_folder(data3, [11, 400, 11])
    params = {"codes": "E11", "by": "sex"}
    result = strict.run(COUNT_TEMPLATE, params).result
    truth_table = truth_counts(data3, ["E11"], by=("sex",))
    assert result["threshold"] == 400
    for cell in result["cells"]:
        shown = truth_table[(cell["sex"],)] >= 400
        assert cell["suppressed"] is not shown and (cell["count"] is None) is not shown
