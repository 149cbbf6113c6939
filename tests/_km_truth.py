"""Kaplan-Meier truth from the pooled plaintext files, computed with pandas and Python
dates (not with the analysis's code): each patient's rounded time, event flag, group."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

UNIT = {"day": 1.0, "week": 7.0, "month": 30.4375, "year": 365.25}
AS_OF = pd.Timestamp("2026-01-01")


def pooled_times(
    data: Path, codes: tuple[str, ...], unit: str = "month", group: str | None = None
) -> pd.DataFrame:
    """One row per usable cohort patient of every hospital: time, event, group, hospital;
    the numbers left out per hospital in `frame.attrs["left_out"]`, and per hospital the
    cohort's patients per group value, usable or not, in `frame.attrs["cohort"]`."""
    rows: list[dict[str, object]] = []
    left_out: dict[str, int] = {}
    cohort: dict[str, dict[object, int]] = {}
    for folder in sorted(p for p in data.iterdir() if p.is_dir()):
        left_out[folder.name] = 0
        cohort[folder.name] = {}
        pat = pd.read_csv(folder / "patients.csv", dtype=str, keep_default_na=False)
        cond = pd.read_csv(folder / "conditions.csv", dtype=str, keep_default_na=False)
        cond = cond[cond["code"].str.startswith(codes)]
        dated = cond[cond["onset_date"] != ""]
        start = pd.to_datetime(dated.groupby("patient_id")["onset_date"].min())
        for _, p in pat[pat["patient_id"].isin(set(cond["patient_id"]))].iterrows():
            t0 = start.get(p["patient_id"])
            level = p[group] if group else None
            cohort[folder.name][level] = cohort[folder.name].get(level, 0) + 1
            death = pd.Timestamp(p["death_date"]) if p["death_date"] else None
            event = death is not None and death <= AS_OF
            contact = pd.Timestamp(p["last_contact_date"]) if p["last_contact_date"] else AS_OF
            end = death if event else min(contact, AS_OF)
            if t0 is None or end < t0:
                left_out[folder.name] += 1
                continue
            days = (end - t0).days
            rows.append(
                {
                    "patient_id": p["patient_id"],
                    "time": math.ceil(days / UNIT[unit]),
                    "event": bool(event),
                    "group": p[group] if group else None,
                    "hospital": folder.name,
                }
            )
    frame = pd.DataFrame(rows)
    frame.attrs["left_out"] = left_out
    frame.attrs["cohort"] = cohort
    return frame


def grid(frame: pd.DataFrame, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """(at risk, events) at the grid points 0..horizon of one set of patients."""
    points = np.arange(horizon + 1)
    t, e = frame["time"].to_numpy(), frame["event"].to_numpy(bool)
    at_risk = np.array([(t >= i).sum() for i in points])
    events = np.array([((t == i) & e).sum() for i in points])
    return at_risk, events
