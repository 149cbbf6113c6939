"""The Kaplan-Meier terminal table: per group, one row per released grid point with an
event (and the first and last released points), then the median and the log-rank test."""

from __future__ import annotations

from smpc_ehr.analyses.common.text import (
    Body,
    dp_line,
    fmt_count,
    fmt_num,
    footer,
    p_clause,
    sections,
    table,
)


def _group_text(group: Body, unit: str, t: int) -> str:
    name = "all patients" if group["group"] is None else f"group {group['group']}"
    if group.get("stratum") is not None:
        name += f", stratum {group['stratum']}"
    shown = [i for i, n in enumerate(group["at_risk"]) if n is not None]
    if not shown:
        return f"{name}: suppressed (at risk < {t} from time 0)"
    keep = [i for i in shown if group["events"][i] or i in (shown[0], shown[-1])]
    rows = [
        [
            str(group["time"][i]),
            fmt_count(group["at_risk"][i], t),
            fmt_count(group["events"][i], t),
            fmt_num(group["survival"][i]),
            f"{fmt_num(group['ci_low'][i])} to {fmt_num(group['ci_high'][i])}",
        ]
        for i in keep
    ]
    text = table([f"time ({unit})", "at risk", "events", "survival", "95% CI"], rows, "rrrrl")
    lo, hi = group["median_ci"]
    median = f"median {fmt_num(group['median'])} (95% CI {fmt_num(lo)} to {fmt_num(hi)})"
    lines = [name, text, median.replace("NA", "not reached")]
    if shown[-1] < len(group["time"]) - 1:
        lines.append(f"from time {shown[-1] + 1} on: suppressed (at risk < {t})")
    return "\n".join(lines)


def render_kaplan_meier(body: Body) -> str:
    """One table per group; the log-rank line if there is a test."""
    t = body["threshold"]
    parts = [_group_text(g, body["time_unit"], t) for g in body["groups"]]
    test = body.get("logrank")
    if test:
        if test.get("strata"):
            stops = ", ".join(f"{s}: 0 to {t}" for s, t in test["last_time_by_stratum"].items())
            where = f"stratified by {test['strata']}, grid points {stops}"
        else:
            where = f"grid points 0 to {test['last_time']}"
        parts.append(
            f"log-rank test: chi2 = {fmt_num(test['chi2'])}, df = {test['df']}, "
            f"{p_clause(test['p'])} ({where}, groups "
            f"{', '.join(str(g) for g in test['groups'])})"
        )
    parts.append(f"left out: {fmt_count(body.get('left_out'), t)}")
    if body.get("dp_note"):
        parts.append(f"note: {body['dp_note']}")
    suppressed = any(g["at_risk"][-1] is None for g in body["groups"])
    return sections(*parts, footer(body, suppressed)) + dp_line(body)
