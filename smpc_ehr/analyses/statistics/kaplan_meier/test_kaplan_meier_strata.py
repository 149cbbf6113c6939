"""The stratified log-rank test (`strata`): curves per group and stratum, each under the
release rule, and the test summed over strata, against a hand computation from the
patients' times (pandas, per distinct event time; not the analysis's code) censored in
each stratum at the last grid point released for both groups; and the local step's
curve numbers against the pooled files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from smpc_ehr.analyses.statistics.kaplan_meier.analysis import KaplanMeierAnalysis
from smpc_ehr.data.cohort import AGE_BANDS
from smpc_ehr.data.loader import load_party_data
from smpc_ehr.errors import TemplateError
from tests._km_truth import grid
from tests._render import T, bind

KM = KaplanMeierAnalysis()
H = 40
SEXES = ("F", "M", "U")


def synthetic() -> pd.DataFrame:
    """Months to death per sex in three age bands with their own baseline hazards (a
    common hazard ratio 1.6 for men); U is too small to release anywhere."""
    rng = np.random.default_rng(11)
    rows = []
    for band, scale in ((3, 40.0), (5, 25.0), (7, 12.0)):
        for sex, n, ratio in (("F", 150, 1.0), ("M", 130, 1.6), ("U", 4, 1.0)):
            death = rng.exponential(scale / ratio, n)
            censor = rng.uniform(5, 60, n)
            t = np.ceil(np.minimum(death, censor)).astype(int)
            rows += [
                {"time": a, "event": b, "sex": sex, "band": AGE_BANDS[band]}
                for a, b in zip(t, death <= censor, strict=True)
            ]
    return pd.DataFrame(rows)


def opened_for(frame: pd.DataFrame) -> list[float]:
    """What the secure program opens for these patients (curves sex x age band)."""
    at, ev = [], []
    for sex in SEXES:
        for band in AGE_BANDS:
            a, e = grid(frame[(frame["sex"] == sex) & (frame["band"] == band)], H)
            at.append(a)
            ev.append(e)
    counts = np.append(np.ravel(at), 0)
    bits = np.array([int(all(n >= T for n in row[: i + 1])) for row in at for i in range(H + 1)])
    bits = np.append(bits, 0)
    return [float(v) for v in (*bits, *(bits * counts), *(bits[:-1] * np.ravel(ev)))]


def hand_stratified(frame: pd.DataFrame, stops: dict[str, int]) -> tuple[float, float]:
    """Two-group (F vs M) log-rank, summed over strata: sum of O - E for F and of the
    hypergeometric variances at each event time, each stratum censored at its stop."""
    u = v = 0.0
    for band, stop in stops.items():
        mine = frame[(frame["band"] == band) & frame["sex"].isin(["F", "M"])]
        t = np.minimum(mine["time"].to_numpy(), stop)
        e = mine["event"].to_numpy(bool) & (mine["time"].to_numpy() <= stop)
        f = (mine["sex"] == "F").to_numpy()
        for time in sorted(set(t[e])):
            n, n1 = (t >= time).sum(), ((t >= time) & f).sum()
            d, d1 = ((t == time) & e).sum(), ((t == time) & e & f).sum()
            u += d1 - n1 * d / n
            v += n1 / n * (1 - n1 / n) * d * (n - d) / (n - 1) if n > 1 else 0.0
    return u * u / v, float(stats.chi2.sf(u * u / v, 1))


def test_stratified_logrank_agrees_with_a_hand_computation() -> None:
    frame = synthetic()
    params = bind("kaplan_meier", codes="E11", group="sex", strata="age_band", horizon=str(H))
    result = KM.release(opened_for(frame), params, T)
    assert result["strata"] == "age_band" and len(result["groups"]) == 3 * len(AGE_BANDS)
    stops = {}
    for g in result["groups"]:
        mine = frame[(frame["sex"] == g["group"]) & (frame["band"] == g["stratum"])]
        at_risk, events = grid(mine, H)
        shown = next((i for i, n in enumerate(at_risk) if n < T), H + 1)
        assert g["at_risk"] == [*at_risk[:shown].tolist(), *[None] * (H + 1 - shown)]
        assert g["events"] == [*events[:shown].tolist(), *[None] * (H + 1 - shown)]
        if g["group"] in ("F", "M") and shown:
            stops[g["stratum"]] = min(stops.get(g["stratum"], H), shown - 1)
    assert sorted(stops) == [AGE_BANDS[3], AGE_BANDS[5], AGE_BANDS[7]]
    test = result["logrank"]
    assert test["groups"] == ["F", "M"] and test["df"] == 1 and test["strata"] == "age_band"
    assert test["last_time_by_stratum"] == stops
    chi2, p = hand_stratified(frame, stops)
    assert test["chi2"] == pytest.approx(chi2, rel=1e-9)
    assert test["p"] == pytest.approx(p, rel=1e-9)
    assert p < 0.01, "the planted hazard ratio (1.6) shows"
    # the unstratified test on the same patients differs (the strata confound it)
    assert (
        abs(
            test["chi2"]
            - hand_stratified(frame.assign(band="all"), {"all": min(stops.values())})[0]
        )
        > 0.1
    )


def test_local_curves_are_group_major_then_stratum(data3: Path) -> None:
    params = bind("kaplan_meier", codes="E11", group="sex", strata="age_band", horizon="5")
    local = KM.local_input(load_party_data(data3 / "hospital-1"), params)
    plain = KM.local_input(
        load_party_data(data3 / "hospital-1"),
        bind("kaplan_meier", codes="E11", group="sex", horizon="5"),
    )
    curves = len(SEXES) * len(AGE_BANDS)
    ev = np.reshape(local[: curves * 6], (len(SEXES), len(AGE_BANDS), 6))
    ce = np.reshape(local[curves * 6 : 2 * curves * 6], (len(SEXES), len(AGE_BANDS), 6))
    beyond = np.reshape(local[2 * curves * 6 : 2 * curves * 6 + curves], (len(SEXES), -1))
    assert ev.sum(axis=1).ravel().tolist() == plain[: 3 * 6]  # no age is missing
    assert ce.sum(axis=1).ravel().tolist() == plain[3 * 6 : 6 * 6]
    assert beyond.sum(axis=1).tolist() == plain[6 * 6 : 6 * 6 + 3]
    left = 2 * curves * 6 + curves
    assert local[left] == plain[6 * 6 + 3]  # left out
    cohort = np.reshape(local[left + 1 :], (len(SEXES), len(AGE_BANDS)))
    assert cohort.sum(axis=1).tolist() == plain[6 * 6 + 4 :]


def test_strata_need_a_group_and_differ_from_it() -> None:
    with pytest.raises(TemplateError, match="needs a 'group'"):
        KM.validate(bind("kaplan_meier", codes="E11", strata="sex"))
    with pytest.raises(TemplateError, match="must differ"):
        KM.validate(bind("kaplan_meier", codes="E11", group="sex", strata="sex"))
