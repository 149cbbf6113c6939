"""Welch's t-test's tidy rows: each group's moments (`group` name=level), then the
difference of means with its 95% CI, t, df and p."""

from __future__ import annotations

from typing import Any

from smpc_ehr.analyses.common.tidy import Row, level, moment_rows, row


def tidy_ttest(result: dict[str, Any]) -> list[Row]:
    variable = result["variable"]
    rows = [
        r
        for lv, moments in result["groups"].items()
        for r in moment_rows(moments, group=level(result["group"], lv), variable=variable)
    ]
    refused = result.get("test_refused")
    where = {"variable": variable, "term": str(result.get("estimate_is", ""))}
    if refused:
        return [*rows, row("estimate", None, suppressed=True, note=refused, **where)]
    method = str(result.get("method", ""))
    rows.append(row("estimate", result.get("estimate"), ci=result.get("ci95"), **where))
    for stat in ("statistic", "df", "p_value"):
        rows.append(row(stat, result.get(stat), note=method, **where))
    return rows
