"""`smpc-ehr run --plot`: figures of REAL finalised results (tests/_render.finalised, the
analysis's own release of opened values), drawn headless; only released values drawn."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from smpc_ehr.cli.plot import figure, write_plot
from smpc_ehr.errors import ConfigError
from tests._render import T, bind, finalised, job, released_counts

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
    assert "log-rank" in ax.get_title()
    path = tmp_path / "km.png"
    write_plot(job(result), path, "kaplan_meier")
    assert png_size(path) == (1050, round(150 * (4.6 + 0.25 * 3)))


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
    args = ["run", "protocols/summary.toml", "--plot", str(path), "--state", str(tmp_path)]
    assert main(args) == 2  # no federation in tmp_path: refused before connecting
    assert "no plot for the analysis 'summary'" in capsys.readouterr().err
    assert not path.exists()
