"""Tidy exports without a federation: every analysis's rows from a REAL finalised result
(the opened values of the render tests, through `release`), the CSV they make, the
generic fallback an analysis without rows of its own gets, and the extended JSON."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from smpc_ehr import __version__
from smpc_ehr.analyses import ANALYSES
from smpc_ehr.analyses.base import Analysis
from smpc_ehr.analyses.common.tidy import COLUMNS, Row, generic_rows
from smpc_ehr.analyses.diagnostics.selftest.analysis import layout
from smpc_ehr.analyses.models.cox import test_cox_unit as cox_case
from smpc_ehr.analyses.models.kmeans import test_kmeans_unit as kmeans_case
from smpc_ehr.analyses.models.logistic import test_logistic_unit as logistic_case
from smpc_ehr.analyses.statistics.kaplan_meier import test_kaplan_meier_tidy as km_case
from smpc_ehr.analyses.statistics.table1 import test_table1_unit as table1_case
from smpc_ehr.cli import build_parser
from smpc_ehr.cli.export import csv_text, tidy_rows
from smpc_ehr.cli.progress import ProgressPrinter
from smpc_ehr.client import Progress
from smpc_ehr.client.client import parameters_as_run
from smpc_ehr.study.template import load_template
from tests._render import T, bind, finalised, job, released_counts


def _flat_release(analysis: str, named: dict[str, np.ndarray], params: Any) -> dict[str, Any]:
    spec = ANALYSES[analysis].outputs(params)
    flat = [float(v) for out in spec for v in np.ravel(named[out.name])]
    return ANALYSES[analysis].release(flat, params, T)


def _logistic() -> dict[str, Any]:
    raw = {"outcome": "readmit_30d", "features": "bmi,hba1c", "test_fraction": "0.3"}
    params = load_template(logistic_case.TEMPLATE).bind(raw)
    rng = np.random.default_rng(3)
    named = logistic_case.model_values("iterates", 2, rng) | logistic_case.evaluation_values(rng)
    return _flat_release("logistic_regression", named, params)


def _kmeans() -> dict[str, Any]:
    raw = {"features": "bmi,sbp", "k": "3", "mode": "pooled", "profile": "readmit_30d"}
    params = load_template(kmeans_case.TEMPLATE).bind(raw)
    return _flat_release("kmeans", kmeans_case.opened_values("pooled", True), params)


def _selftest() -> dict[str, Any]:
    shapes = layout(4)
    opened = {name: np.arange(int(np.prod(shape)), dtype=float) for name, shape in shapes}
    return finalised("selftest", opened, bind("backend_selftest", seed="7", size="4"))


MOMENTS = {
    "released": [1, 1],
    "missing_released": [1, 0],
    "shown": [1, 1],
    "n": [7132, 1059],
    "missing": [637, 94],
    "mean": [5.97333, 6.53059],
    "variance": [0.9776, 0.9774],
}

CASES: dict[str, Callable[[], dict[str, Any]]] = {
    "count": lambda: finalised(
        "count", released_counts([1317, 1290, 4]), bind("rare_disease_count", codes="E11", by="sex")
    ),
    "summary": lambda: finalised(
        "summary",
        {k: [*v, 0, 0, 0, 0] for k, v in MOMENTS.items()},
        bind("summary", variables="bmi,ldl", by="sex"),
    ),
    "correlation": lambda: finalised(
        "correlation",
        {
            "released": [1],
            "shown": [1],
            "missing_released": [1, 0],
            "n": [7068],
            "means": [26.732, 135.83],
            "covariance": [[32.05, 62.88], [62.88, 457.48]],
            "missing": [268, 0],
        },
        bind("correlation", variables="bmi,sbp"),
    ),
    "histogram": lambda: finalised(
        "histogram",
        released_counts([120, 5, 30, 12]),
        bind("histogram", variable="bmi", edges="10,20,30"),
    ),
    "quantiles": lambda: finalised(
        "quantiles",
        {
            "released": [1, 1, 0],
            "indices": [0, 33, 0],
            "counts_released": [1, 1],
            "counts": [500, 20],
        },
        bind("quantiles", variable="bmi", q="0.1,0.5,0.9", low="10", high="40", step="0.5"),
    ),
    "contingency": lambda: finalised(
        "contingency",
        released_counts([400, 50, 380, 60, 30, 12, 20]),
        bind("contingency", row="sex", col="readmit_30d"),
    ),
    "ttest": lambda: finalised(
        "ttest", MOMENTS, bind("ttest", variable="hba1c", group="readmit_30d")
    ),
    "odds_ratio": lambda: finalised(
        "odds_ratio",
        released_counts([504, 1967, 649, 5802, 78]),
        bind("odds_ratio", exposure="condition", outcome="readmit_30d", condition_codes="E11"),
    ),
    "logistic_regression": _logistic,
    "kmeans": _kmeans,
    "kaplan_meier": km_case.released_result,
    "cox_regression": cox_case.released_result,
    "table1": table1_case.render_case,
    "selftest": _selftest,
}
"""A real finalised result per analysis of this branch. An analysis added later without
its own tidy rows gets the generic ones (and needs no case here); one with its own
needs a case (`test_own_tidy_rows_are_tested`)."""


def by_key(rows: list[Row]) -> dict[tuple[str, str, str, str], Row]:
    keyed = {(r["group"], r["variable"], r["term"], r["statistic"]): r for r in rows}
    assert len(keyed) == len(rows), "each estimate once"
    return keyed


def check_shape(rows: list[Row]) -> None:
    """Every row has every column, a number or nothing as value, nothing when
    suppressed, and the CSV holds the same rows."""
    assert rows
    for r in rows:
        assert tuple(r) == COLUMNS
        assert r["statistic"]
        assert r["value"] is None or isinstance(r["value"], int | float)
        if r["suppressed"]:
            assert r["value"] is None
    parsed = list(csv.DictReader(io.StringIO(csv_text(rows))))
    assert len(parsed) == len(rows)
    for line, r in zip(parsed, rows, strict=True):
        assert line["value"] == ("" if r["value"] is None else line["value"])
        if r["value"] is not None:
            assert float(line["value"]) == float(r["value"])
        assert line["suppressed"] == {True: "true", False: "false", None: ""}[r["suppressed"]]


def test_own_tidy_rows_are_tested() -> None:
    own = {name for name, a in ANALYSES.items() if type(a).tidy is not Analysis.tidy}
    assert own <= set(CASES), "an analysis with its own tidy rows needs a case in CASES"
    assert set(CASES) - own == {"selftest"}  # the self-test's rows are the generic ones


@pytest.mark.parametrize("analysis", sorted(CASES))
def test_every_analysis_gives_tidy_rows_of_a_real_result(analysis: str) -> None:
    body = CASES[analysis]()
    rows = tidy_rows(dataclasses.replace(job(body), analysis=analysis))
    check_shape(rows)
    assert {r["analysis"] for r in rows} == {analysis}
    if "threshold" in body:  # the self-test releases none
        assert by_key(rows)[("", "", "", "small_cell_threshold")]["value"] == T


def test_rows_hold_the_released_numbers() -> None:
    def rows_of(name: str) -> dict[tuple[str, str, str, str], Row]:
        return by_key(ANALYSES[name].tidy(CASES[name]()))

    count = rows_of("count")
    assert count[("sex=F", "", "", "count")]["value"] == 1317
    assert (
        count[("sex=U", "", "", "count")] | {"value": None, "suppressed": True}
        == count[("sex=U", "", "", "count")]
    )
    summary = rows_of("summary")
    assert summary[("sex=F", "bmi", "", "mean")]["value"] == pytest.approx(5.97333)
    variance = 0.9776 * 7132 / 7131  # the opened variance is the population one
    assert summary[("sex=F", "bmi", "", "variance")]["value"] == pytest.approx(variance)
    assert summary[("sex=F", "bmi", "", "sd")]["value"] == pytest.approx(variance**0.5)
    assert summary[("sex=U", "ldl", "", "n")]["suppressed"] is True
    corr = rows_of("correlation")
    r = 62.88 / (32.05 * 457.48) ** 0.5
    pair = corr[("", "bmi", "sbp", "correlation")]
    assert pair["value"] == pytest.approx(r)
    assert pair["lower"] < pair["value"] < pair["upper"]  # Fisher's z 95% CI
    assert corr[("", "bmi", "sbp", "p_value")]["value"] < 1e-16
    assert corr[("", "sbp", "", "missing")]["suppressed"] is True  # 0 < threshold: hidden
    hist = rows_of("histogram")
    assert hist[("", "bmi", "[10, 20)", "count")]["value"] == 120
    assert hist[("", "bmi", "[20, 30]", "count")]["suppressed"] is True
    quant = rows_of("quantiles")
    assert quant[("", "bmi", "q=0.5", "quantile")]["value"] == pytest.approx(26.5)
    assert quant[("", "bmi", "q=0.9", "quantile")]["suppressed"] is True
    assert "below_range" in quant[("", "bmi", "q=0.1", "quantile")]["note"]
    table = rows_of("contingency")
    assert table[("sex=F", "", "readmit_30d=1", "count")]["value"] == 50
    assert table[("", "", "", "n")]["value"] == 932
    ttest = rows_of("ttest")
    diff = ttest[("", "hba1c", "mean(1) - mean(0)", "estimate")]
    assert diff["value"] == pytest.approx(6.53059 - 5.97333)
    assert diff["lower"] < diff["value"] < diff["upper"]
    odds = rows_of("odds_ratio")
    ratio = odds[("", "condition", "readmit_30d", "odds_ratio")]
    assert ratio["value"] == pytest.approx(504 * 5802 / (1967 * 649))
    assert (ratio["lower"], ratio["upper"]) == pytest.approx(
        (2.0172401679631506, 2.601122471224115)
    )
    logistic = rows_of("logistic_regression")
    model = _logistic()
    hba1c = logistic[("", "", "hba1c", "odds_ratio")]
    assert hba1c["value"] == pytest.approx(np.exp(model["coefficients"]["hba1c"]))
    assert [hba1c["lower"], hba1c["upper"]] == model["ci95"]["hba1c"]
    assert logistic[("", "evaluation", "", "auc")]["value"] == 0.75
    assert logistic[("", "", "", "events")]["value"] == 120
    assert logistic[("", "", "", "left_out")]["value"] == 40
    assert logistic[("", "", "", "log_likelihood")]["value"] == -340.25
    assert logistic[("", "", "", "aic")]["value"] == pytest.approx(2 * 340.25 + 2 * 3)
    kmeans = rows_of("kmeans")
    assert kmeans[("cluster=0", "bmi", "", "centroid")]["value"] == pytest.approx(24.5)
    assert kmeans[("cluster=0", "sbp", "", "centroid")]["value"] == pytest.approx(121.0)
    assert kmeans[("cluster=1", "sbp", "", "centroid")]["suppressed"] is True
    assert kmeans[("", "", "", "n")]["suppressed"] is True


def test_an_analysis_without_rows_of_its_own_gets_the_generic_ones() -> None:
    result = {"groups": [{"group": "F", "survival": [1.0, 0.9, None]}], "logrank": None}
    rows = tidy_rows(dataclasses.replace(job(result), analysis="not_registered_yet"))
    assert [(r["statistic"], r["value"]) for r in rows] == [
        ("groups[0].survival[0]", 1.0),
        ("groups[0].survival[1]", 0.9),
        ("groups[0].survival[2]", None),
        ("logrank", None),
    ]
    assert ANALYSES["selftest"].tidy(_selftest()) == generic_rows(_selftest())


def test_json_carries_parameters_version_hash_and_time() -> None:
    params = bind("summary", variables="bmi,ldl", as_of="2024-06-01", age="18-90")
    result = dataclasses.replace(
        job({"count": 3}),
        analysis="summary",
        parameters=parameters_as_run(params),
        finished=1_700_000_000.25,
        data_versions={"a": "sha256:00"},
    )
    out = json.loads(json.dumps(result.as_dict()))
    assert out["parameters"]["as_of"] == "2024-06-01"
    assert out["parameters"]["variables"] == ["bmi", "ldl"]
    assert out["parameters"]["age"] == [18, 90]
    assert out["parameters"]["by"] is None
    assert out["template_hash"] == out["protocol_hash"] == "sha256:0"
    assert out["software_version"] == __version__
    expected = dt.datetime.fromtimestamp(1_700_000_000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert out["timestamp"] == expected
    assert out["data_versions"] == {"a": "sha256:00"}
    assert out["analysis"] == "summary"


def test_progress_off_a_terminal_is_one_line_per_phase(capsys: pytest.CaptureFixture[str]) -> None:
    printer = ProgressPrinter(terminal=False, quiet=False)
    printer.submitted("j1")
    for step in (1, 2):
        for party in ("hospital-1", "hospital-2", "hospital-3"):  # every party reports it
            printer.progress(Progress("lloyd", step, 50, f"{party}: iterates"))
    printer.done("j1", 26.04)
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == [
        "smpc-ehr run: job j1 queued",
        "smpc-ehr run: lloyd 1/50 (hospital-1: iterates)",
        "smpc-ehr run: lloyd 2/50 (hospital-1: iterates)",
        "smpc-ehr run: job j1 done in 26.0 s",
    ]
    assert all(line[8] == "Z" for line in lines)  # HH:MM:SSZ stamps
    quiet = ProgressPrinter(terminal=False, quiet=True)
    quiet.submitted("j2")
    quiet.progress(Progress("newton", 1, 0, ""))
    quiet.done("j2", 1.0)
    assert capsys.readouterr().err == ""


def test_a_csv_into_a_missing_folder_is_refused_before_the_job(tmp_path: Path) -> None:
    parser = build_parser()
    args = parser.parse_args(["run", "p.toml", "--csv", str(tmp_path / "out.csv")])
    assert args.csv == str(tmp_path / "out.csv") and not args.quiet
    for bad in (str(tmp_path / "nowhere" / "out.csv"), str(tmp_path)):
        with pytest.raises(SystemExit):
            parser.parse_args(["run", "p.toml", "--csv", bad])
