"""The Kaplan-Meier tidy rows: per group (`group` name=level, empty without a group) and
released grid point (`term` "time=i"; with strata, per group and stratum: `sex=F;
age_band=40-49`), the number at risk, the events and the survival
with its 95% interval; each group's median with its interval; then the log-rank test
(chi2, df, p_value) and the left-out count. `variable` is the event column."""

from __future__ import annotations

from typing import Any

from smpc_ehr.analyses.common.tidy import Row, count_row, level, row


def _group_rows(g: dict[str, Any], group: str, variable: str, unit: str) -> list[Row]:
    where = {"group": group, "variable": variable}
    rows = []
    for i, t in enumerate(g["time"]):
        term = f"time={t}"
        hidden = g["at_risk"][i] is None
        rows.append(count_row("at_risk", g["at_risk"][i], term=term, **where))
        rows.append(count_row("events", g["events"][i], term=term, **where))
        ci = None if hidden else (g["ci_low"][i], g["ci_high"][i])
        note = f"time in {unit}s; log(-log) 95% CI"
        survival = g["survival"][i]
        rows.append(
            row("survival", survival, term=term, ci=ci, suppressed=hidden, note=note, **where)
        )
    nothing = g["at_risk"][0] is None
    median = g["median"]
    note = "" if nothing or median is not None else "not reached on the released grid points"
    rows.append(row("median", median, ci=g["median_ci"], suppressed=nothing, note=note, **where))
    return rows


def _logrank_rows(test: dict[str, Any] | None, variable: str) -> list[Row]:
    if test is None:
        note = "no test: fewer than two groups with released points, or no events"
        return [row("chi2", None, variable=variable, suppressed=True, note=note)]
    groups = ",".join(str(g) for g in test["groups"])
    note = str(test.get("note", "")) + f"; groups {groups}"
    return [
        row(stat, test[key], variable=variable, term="logrank", note=note)
        for stat, key in (("chi2", "chi2"), ("df", "df"), ("p_value", "p"))
    ]


def _label(g: dict[str, Any], result: dict[str, Any]) -> str:
    """`sex=F`, with strata `sex=F; age_band=40-49`, empty without a group."""
    if g["group"] is None:
        return ""
    parts = [level(result.get("group_by") or "group", g["group"])]
    if result.get("strata"):
        parts.append(level(result["strata"], g.get("stratum")))
    return "; ".join(parts)


def tidy_kaplan_meier(result: dict[str, Any]) -> list[Row]:
    variable = str(result.get("event", ""))
    unit = str(result["time_unit"])
    by = result.get("group_by")
    rows = [r for g in result["groups"] for r in _group_rows(g, _label(g, result), variable, unit)]
    if by:
        rows += _logrank_rows(result.get("logrank"), variable)
    rows.append(count_row("left_out", result.get("left_out"), variable=variable))
    return rows
