"""Kaplan-Meier: the local step against a pandas computation on the synthetic files, the
finaliser against lifelines (KaplanMeierFitter, median_survival_times, logrank tests) on
grouped synthetic times, the release rule, and the planted hazard recovered."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from lifelines import KaplanMeierFitter
from lifelines.statistics import multivariate_logrank_test
from lifelines.utils import median_survival_times

from smpc_ehr.analyses.statistics.kaplan_meier.analysis import KaplanMeierAnalysis
from smpc_ehr.analyses.statistics.kaplan_meier.local import patient_times
from smpc_ehr.data import synth_survival
from smpc_ehr.data.loader import load_party_data
from smpc_ehr.errors import DataError, TemplateError
from tests._km_truth import grid, pooled_times
from tests._render import bind

KM = KaplanMeierAnalysis()
T = 10
TOL = 1e-9


def test_local_input_is_the_plaintext_count(data3: Path) -> None:
    party = data3 / "hospital-1"
    params = bind("kaplan_meier", codes="E11,I50", group="sex", horizon="40")
    local = KM.local_input(load_party_data(party), params)
    truth = pooled_times(data3, ("E11", "I50"), "month", "sex")
    mine = truth[truth["hospital"] == "hospital-1"]
    want_ev, want_ce, beyond, want_at = [], [], [], []
    for sex in ("F", "M", "U"):
        t, e = mine[mine["group"] == sex]["time"], mine[mine["group"] == sex]["event"]
        want_ev += [int(((t == i) & e).sum()) for i in range(41)]
        want_ce += [int(((t == i) & ~e).sum()) for i in range(41)]
        beyond.append(int((t > 40).sum()))
        want_at += grid(mine[mine["group"] == sex], 40)[0].tolist()
    assert local[: 3 * 41] == want_ev
    assert local[3 * 41 : 6 * 41] == want_ce
    assert local[6 * 41 : 6 * 41 + 3] == beyond
    left = 6 * 41 + 3
    assert local[left] == truth.attrs["left_out"]["hospital-1"] > 0
    cohort = truth.attrs["cohort"]["hospital-1"]
    assert local[left + 1 :] == [cohort.get(sex, 0) for sex in ("F", "M", "U")]
    assert sum(local[left + 1 :]) == want_at[0] + want_at[41] + want_at[82] + local[left]
    dp = KM.local_input(load_party_data(party), {**params, "epsilon": 1.0})
    assert dp == local[: left + 1], "with epsilon, no exact cohort count is input"
    assert sum(want_ev) > 20 and want_at[0] > 100


def test_weeks_and_years_round_up(data3: Path) -> None:
    data = load_party_data(data3 / "hospital-2")
    for unit in ("day", "week", "year"):
        params = bind("kaplan_meier", codes="E11", time_unit=unit, horizon="20")
        got = patient_times(data, params)
        truth = pooled_times(data3, ("E11",), unit)
        want = truth[truth["hospital"] == "hospital-2"]
        assert sorted(got.time.tolist()) == sorted(want["time"].tolist()), unit


def test_a_party_without_the_date_columns_is_told_which(data3: Path) -> None:
    import dataclasses

    data = dataclasses.replace(load_party_data(data3 / "hospital-1"), dates={})
    with pytest.raises(DataError, match="death_date"):
        KM.local_input(data, bind("kaplan_meier", codes="E11"))


def _opened(at: np.ndarray, ev: np.ndarray, left: int, t: int) -> list[float]:
    """What the secure program opens for these joint counts (flat, declared order)."""
    counts = np.concatenate([at.ravel(), [left]])
    bits = (counts >= t).astype(float)
    return [*bits, *(bits * counts), *(bits[:-1] * ev.ravel())]


def _counts(times: list[tuple[np.ndarray, np.ndarray]], h: int) -> tuple[np.ndarray, np.ndarray]:
    """Numbers at risk and events at 0..h, one row per (times, event flags)."""
    points = np.arange(h + 1)
    at = np.array([[(t >= i).sum() for i in points] for t, _ in times])
    ev = np.array([[((t == i) & e).sum() for i in points] for t, e in times])
    return at, ev


def _synthetic(rng: np.random.Generator) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Grouped rounded times (months) with ties and censoring; U too small to show."""
    out = {}
    for sex, n, scale in (("F", 400, 30.0), ("M", 350, 18.0), ("U", 6, 20.0)):
        death = rng.exponential(scale, n)
        censor = rng.uniform(0, 80, n)
        t = np.ceil(np.minimum(death, censor)).astype(int)
        out[sex] = (t, death <= censor)
    return out


def _release(times: dict[str, tuple[np.ndarray, np.ndarray]], h: int) -> dict[str, Any]:
    at, ev = _counts(list(times.values()), h)
    params = bind("kaplan_meier", codes="E11", group="sex", horizon=str(h))
    return KM.release(_opened(at, ev, 4, T), params, T)


def test_finalize_agrees_with_lifelines() -> None:
    times = _synthetic(np.random.default_rng(7))
    h = 100
    result = _release(times, h)
    assert [g["group"] for g in result["groups"]] == ["F", "M", "U"]
    assert result["left_out"] is None  # 4 < T
    last = {}
    for g in result["groups"][:2]:
        t, e = times[g["group"]]
        shown = [i for i, n in enumerate(g["at_risk"]) if n is not None]
        assert shown == list(range(len(shown))) and 0 < len(shown) < h + 1
        assert all(n >= T for n in g["at_risk"][: len(shown)])
        assert all(
            v is None
            for k in ("at_risk", "events", "survival", "ci_low")
            for v in g[k][len(shown) :]
        )
        fit = KaplanMeierFitter().fit(t, e, alpha=0.05)
        s = fit.survival_function_at_times(shown).to_numpy()
        ci = fit.confidence_interval_.reindex(shown, method="ffill").fillna(1.0).to_numpy()
        np.testing.assert_allclose(g["survival"][: len(shown)], s, rtol=0, atol=TOL)
        np.testing.assert_allclose(g["ci_low"][: len(shown)], ci[:, 0], rtol=0, atol=TOL)
        np.testing.assert_allclose(g["ci_high"][: len(shown)], ci[:, 1], rtol=0, atol=TOL)
        median = fit.median_survival_time_
        assert g["median"] == (median if median <= shown[-1] else None)
        bounds = median_survival_times(fit.confidence_interval_).to_numpy()[0]
        assert g["median_ci"] == [b if b <= shown[-1] else None for b in bounds]
        last[g["group"]] = shown[-1]
    u = result["groups"][2]
    assert all(v is None for v in u["at_risk"] + u["survival"]) and u["median"] is None
    stop = min(last.values())
    test = result["logrank"]
    assert test["groups"] == ["F", "M"] and test["df"] == 1 and test["last_time"] == stop
    t = np.concatenate([times["F"][0], times["M"][0]])
    e = np.concatenate([times["F"][1], times["M"][1]])
    group = np.repeat([0, 1], [len(times["F"][0]), len(times["M"][0])])
    want = multivariate_logrank_test(np.minimum(t, stop), group, e & (t <= stop))
    assert abs(test["chi2"] - want.test_statistic) < TOL
    assert abs(test["p"] - want.p_value) < TOL


def test_without_group_one_curve_and_no_test() -> None:
    t = np.array([0, 1, 1, 2, 3, 3, 3, 5, 8, 8, 9, 12, 12, 15])
    e = np.array([1, 1, 0, 1, 1, 1, 0, 0, 1, 0, 1, 1, 0, 1], dtype=bool)
    at, ev = _counts([(t, e)], 20)
    result = KM.release(_opened(at, ev, 12, 5), bind("kaplan_meier", codes="E11", horizon="20"), 5)
    (g,) = result["groups"]
    assert g["group"] is None and result["logrank"] is None and result["left_out"] == 12
    # released while at least 5 are at risk: times 0..8 (6 at risk at 8, 4 at 9)
    assert g["at_risk"][:9] == [14, 13, 11, 10, 7, 7, 6, 6, 6] and g["at_risk"][9:] == [None] * 12
    assert g["events"][:9] == [1, 1, 1, 2, 0, 0, 0, 0, 1]
    fit = KaplanMeierFitter().fit(t, e)
    np.testing.assert_allclose(
        g["survival"][:9], fit.survival_function_at_times(range(9)), atol=TOL
    )


def test_no_released_number_comes_from_a_small_risk_set() -> None:
    """The attack of two cohorts differing by one patient: what differs is the numbers at
    risk up to that patient's time and one event (the leakage says so); nothing from a
    risk set below the threshold is released in either."""
    rng = np.random.default_rng(3)
    t = np.ceil(rng.exponential(10, 60)).astype(int)
    e = rng.random(60) < 0.8
    base = {"F": (t, e)}
    extra = {"F": (np.append(t, 4), np.append(e, True))}
    results = []
    for times in (base, extra):
        at, ev = _counts(list(times.values()), 30)
        params = bind("kaplan_meier", codes="E11", horizon="30")
        g = KM.release(_opened(at, ev, 0, T), params, T)["groups"][0]
        shown = [i for i, n in enumerate(g["at_risk"]) if n is not None]
        assert all(at[0, i] >= T for i in shown)
        assert all(at[0, i] < T for i in range(31) if i not in shown)
        results.append(g)
    a, b = results
    common = min(a["at_risk"].index(None), b["at_risk"].index(None))
    diff_at = [y - x for x, y in zip(a["at_risk"][:common], b["at_risk"][:common], strict=True)]
    diff_ev = [y - x for x, y in zip(a["events"][:common], b["events"][:common], strict=True)]
    assert diff_at == [1] * 5 + [0] * (common - 5)  # at risk at times 0..4
    assert diff_ev == [0] * 4 + [1] + [0] * (common - 5)  # one event at time 4


@pytest.mark.parametrize(
    ("raw", "match"),
    [({"group": "condition"}, "condition_codes")],
)
def test_validate_refuses(raw: dict[str, str], match: str) -> None:
    with pytest.raises(TemplateError, match=match):
        KM.validate(bind("kaplan_meier", codes="E11", **raw))
    with pytest.raises(TemplateError):
        bind("kaplan_meier", codes="E11", horizon="121")
    with pytest.raises(TemplateError):
        bind("kaplan_meier", codes="E11", event="birth_date")


def test_the_planted_hazard_is_recovered(data3: Path) -> None:
    """Deaths are exponential from a patient's latest diagnosis, hazard 0.04/year for
    women and 1.8 times that for men (synth_survival): from the files (pandas), the
    events per person-year from the latest onset to the end estimate each hazard. (An
    analysis's time zero is the earliest onset of its codes: the years before the
    latest diagnosis are immortal time, as in real records.)"""
    events = {"F": 0, "M": 0}
    exposure = {"F": 0.0, "M": 0.0}
    as_of = pd.Timestamp("2026-01-01")
    for party in sorted(p for p in data3.iterdir() if p.is_dir()):
        pat = pd.read_csv(party / "patients.csv", dtype=str, keep_default_na=False)
        cond = pd.read_csv(party / "conditions.csv", dtype=str, keep_default_na=False)
        dated = cond[cond["onset_date"] != ""]
        latest = pd.to_datetime(dated.groupby("patient_id")["onset_date"].max())
        for _, row in pat[pat["patient_id"].isin(latest.index)].iterrows():
            if row["sex"] not in events:
                continue
            death = pd.Timestamp(row["death_date"]) if row["death_date"] else None
            died = death is not None and death <= as_of
            contact = pd.Timestamp(row["last_contact_date"]) if row["last_contact_date"] else as_of
            end = death if died else min(contact, as_of)
            events[row["sex"]] += int(died)
            exposure[row["sex"]] += (end - latest[row["patient_id"]]).days / 365.25
    rates = {sex: events[sex] / exposure[sex] for sex in events}
    assert abs(rates["F"] / synth_survival.BASE_HAZARD_PER_YEAR - 1) < 0.15, rates
    assert abs(rates["M"] / rates["F"] / synth_survival.MALE_HAZARD_RATIO - 1) < 0.2, rates
