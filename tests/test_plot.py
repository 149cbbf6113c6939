"""`smpc-ehr run --plot`: figures of REAL finalised results (tests/_render.finalised, the
analysis's own release of opened values), drawn headless; only released values drawn."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from smpc_ehr.cli.plot import figure, write_plot
from smpc_ehr.data.cohort import AGE_BANDS
from smpc_ehr.errors import ConfigError
from tests._render import T, bind, finalised, job, released_counts
from tests.federations import PROTOCOLS

pytest.importorskip("matplotlib")

HORIZON = 20


def km_result() -> dict[str, Any]:
    """A real Kaplan-Meier result by sex over 0..20 years: F and M from exponential
    times (M's hazard 1.8 times F's), so their late risk sets fall below T; U empty."""
    rng = np.random.default_rng(7)
    at_risk_all: list[int] = []
    events_all: list[int] = []
    for n, hazard in ((200, 0.04), (150, 0.072), (0, 0.0)):
        event_time = np.ceil(rng.exponential(1 / hazard, n)) if n else np.zeros(0)
        censor = rng.integers(0, 22, n)
        time = np.minimum(event_time, censor)
        event = event_time <= censor
        for i in range(HORIZON + 1):
            at_risk_all.append(int((time >= i).sum()))
            events_all.append(int(((time == i) & event).sum()))
    cells = released_counts([*at_risk_all, 50])
    bits = cells["released"][:-1]
    opened = {**cells, "events": [b * e for b, e in zip(bits, events_all, strict=True)]}
    params = bind("kaplan_meier", codes="E11", group="sex", time_unit="year", horizon="20")
    return finalised("kaplan_meier", opened, params)


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from the PNG header (an independent read of the file)."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def test_kaplan_meier_plot_draws_released_points_only(tmp_path: Path) -> None:
    result = km_result()
    fig = figure(result, "kaplan_meier")
    ax, table = fig.axes
    curves = {line.get_label(): line for line in ax.get_lines()}
    assert set(curves) == {"F (n = 200)", "M (n = 150)"}, "U has nothing released: no curve"
    for g in result["groups"][:2]:
        shown = next(i for i, s in enumerate(g["survival"]) if s is None)
        assert 3 < shown < HORIZON + 1, "late points are suppressed in this fixture"
        line = curves[f"{g['group']} (n = {g['at_risk'][0]})"]
        assert list(line.get_xdata()) == list(range(shown)), "stops at the last released point"
        assert list(line.get_ydata()) == g["survival"][:shown]
    words = [t.get_text() for t in table.texts]
    f, m = result["groups"][0]["at_risk"], result["groups"][1]["at_risk"]
    assert ["200", f"{f[5]}", f"{f[10]}"] == words[:3]
    assert "150" in words and f"{m[5]}" in words
    assert [t.get_text() for t in table.get_yticklabels()] == ["F", "M", "U"]
    assert words.count(f"<{T}") == sum(
        n is None for g in result["groups"] for n in g["at_risk"][::5]
    )
    assert table.get_xlabel() == "time since first diagnosis (years)"
    assert fig.get_suptitle().startswith("Kaplan-Meier: time to death")
    assert "log-rank (chi2 = " in fig.get_suptitle()
    path = tmp_path / "km.png"
    write_plot(job(result), path, "kaplan_meier")
    assert png_size(path) == (1050, round(150 * (2.0 + 2.6 + 0.25 * 3)))


def test_a_stratified_kaplan_meier_plot_has_one_panel_per_released_stratum() -> None:
    """Strata sex x (F, M, U): F and M get a panel each, named by the stratum, with the
    age bands' curves in the same colour in both; U, where nothing is released, is
    named in the note."""
    rng = np.random.default_rng(3)
    params = bind(
        "kaplan_meier", codes="E11", group="age_band", strata="sex", time_unit="year",
        horizon="10",
    )  # fmt: skip
    bands = len(AGE_BANDS)
    sizes = {(b, s): (60 if b in (6, 7) and s < 2 else 0) for b in range(bands) for s in range(3)}
    at_risk_all: list[int] = []
    events_all: list[int] = []
    for b in range(bands):
        for s in range(3):
            time = np.ceil(rng.exponential(15.0, sizes[(b, s)]))
            at_risk_all += [int((time >= i).sum()) for i in range(11)]
            events_all += [int((time == i).sum()) for i in range(11)]
    cells = released_counts([*at_risk_all, 0])
    bits = cells["released"][:-1]
    opened = {**cells, "events": [b * e for b, e in zip(bits, events_all, strict=True)]}
    result = finalised("kaplan_meier", opened, params)
    fig = figure(result, "kaplan_meier")
    panels = fig.axes[::2]
    assert [ax.get_title() for ax in panels] == ["sex F", "sex M"]
    for ax in panels:
        labels = sorted(line.get_label() for line in ax.get_lines())
        assert labels == [f"{AGE_BANDS[6]} (n = 60)", f"{AGE_BANDS[7]} (n = 60)"]
    colours = [{ln.get_label()[:5]: ln.get_color() for ln in ax.get_lines()} for ax in panels]
    assert colours[0] == colours[1], "a group has one colour in every panel"
    assert "stratified by sex" in fig.get_suptitle()
    assert any("sex U: nothing released" in t.get_text() for t in fig.texts)


def test_an_analysis_without_a_plot_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "x.png"
    with pytest.raises(ConfigError, match="no plot for the analysis 'count'"):
        write_plot(job({"count": 12}), path, "count")
    assert not path.exists()


def test_run_refuses_a_plot_it_cannot_draw_before_the_job(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from smpc_ehr.cli import main

    path = tmp_path / "s.png"
    args = ["run", str(PROTOCOLS / "summary.toml"), "--plot", str(path), "--state", str(tmp_path)]
    assert main(args) == 2  # no federation in tmp_path: refused before connecting
    assert "no plot for the analysis 'summary'" in capsys.readouterr().err
    assert not path.exists()


def test_histogram_plot_has_a_bar_per_released_bin() -> None:
    params = bind("histogram", variable="bmi", edges="10,20,30,40")
    result = finalised("histogram", released_counts([120, 5, 30, 0, 12]), params)
    ax = figure(result, "histogram").axes[0]
    bars = [(p.get_x(), p.get_width(), p.get_height()) for p in ax.patches]
    assert bars == [(10, 10, 120), (30, 10, 30)], "the suppressed bin [20, 30) has no bar"
    assert [t.get_text() for t in ax.texts] == [f"<{T}"]
    assert ax.get_xlabel() == "bmi" and "missing: 12" in ax.get_title()


def logistic_result(seed: int, rows: int) -> dict[str, Any]:
    """A real logistic result whose evaluation holds `rows` scored rows."""
    from smpc_ehr.analyses.common import evaluation
    from smpc_ehr.analyses.models.logistic.test_logistic_unit import ANALYSIS, model_values

    rng = np.random.default_rng(seed)
    scores = rng.random(rows)
    y = (rng.random(rows) < scores).astype(float)
    counts = evaluation.local_counts(scores, y)
    released = (counts[:24] >= T).astype(float)
    named = model_values("iterates", 2, rng) | {
        "evaluation_released": released,
        "evaluation_counts": released * counts[:24],
        "evaluation_score_sums": released[4:14] * counts[24:34],
        "evaluation_auc_released": np.ones(1),
        "evaluation_auc": np.array([0.75]),
    }
    raw = {"outcome": "readmit_30d", "features": "bmi,hba1c", "test_fraction": "0.3"}
    params = bind("logistic_regression", **raw)
    flat = [float(v) for out in ANALYSIS.outputs(params) for v in np.ravel(named[out.name])]
    result = ANALYSIS.release(flat, params, T)
    result["truth"] = (scores, y)
    return result


def test_logistic_roc_is_the_rates_at_the_tenths_and_calibration_the_released_ones() -> None:
    result = logistic_result(5, 3000)
    scores, y = result.pop("truth")
    roc, cal = figure(result, "logistic_regression").axes
    curve = roc.get_lines()[1]
    cuts = [1.1, *[k / 10 for k in range(9, -1, -1)]]
    want_fpr = [float(np.mean(scores[y == 0] >= c)) for c in cuts]
    want_tpr = [float(np.mean(scores[y == 1] >= c)) for c in cuts]
    np.testing.assert_allclose(curve.get_xdata(), want_fpr, atol=1e-12)
    np.testing.assert_allclose(curve.get_ydata(), want_tpr, atol=1e-12)
    assert "AUC 0.750" in [t.get_text() for t in roc.get_legend().get_texts()]
    points = cal.get_lines()[1]
    shown = [b for b in result["evaluation"]["calibration"] if b["observed_rate"] is not None]
    assert list(points.get_ydata()) == [b["observed_rate"] for b in shown]


def test_logistic_without_released_tenths_draws_no_roc_curve() -> None:
    result = logistic_result(5, 150)  # 15 rows per tenth: events and rates suppressed
    scores, y = result.pop("truth")
    roc, cal = figure(result, "logistic_regression").axes
    assert "no ROC curve" in roc.texts[0].get_text()
    _diagonal, cutoff = roc.get_lines()  # the confusion matrix at 0.5 is released: its point
    assert cutoff.get_label() == "cut-off 0.5"
    want = (np.mean(scores[y == 0] >= 0.5), np.mean(scores[y == 1] >= 0.5))
    np.testing.assert_allclose([cutoff.get_xdata()[0], cutoff.get_ydata()[0]], want)
    assert "suppressed" in cal.get_title()


def test_kmeans_profiles_draw_released_clusters_only() -> None:
    from smpc_ehr.analyses.models.kmeans.test_kmeans_unit import ANALYSIS, opened_values

    params = bind("kmeans", features="bmi,sbp", k="3", profile="readmit_30d")
    named = opened_values("iterates", hidden=True)
    flat = [float(v) for out in ANALYSIS.outputs(params) for v in np.ravel(named[out.name])]
    result = ANALYSIS.release(flat, params, T)
    fig = figure(result, "kmeans")
    bmi, sbp = fig.axes
    assert [p.get_height() for p in bmi.patches] == [24.5]
    assert [p.get_height() for p in sbp.patches] == [121.0]
    labels = [t.get_text() for t in bmi.get_xticklabels()]
    assert labels == ["0\n(n=812)", f"1\n(<{T})", f"2\n(<{T})"]
    assert (bmi.get_title(), sbp.get_title()) == ("bmi", "sbp")


def test_a_logistic_regression_without_evaluation_is_told_how(tmp_path: Path) -> None:
    result = logistic_result(5, 150)
    result.pop("truth")
    result["evaluation"] = None
    with pytest.raises(ConfigError, match="test_fraction"):
        write_plot(job(result), tmp_path / "l.png", "logistic_regression")
    assert not (tmp_path / "l.png").exists()
