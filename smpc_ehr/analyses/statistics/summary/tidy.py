"""The summary's tidy rows: n, missing, mean, sd, se, variance per variable (and per
stratum in `group` with `by`)."""

from __future__ import annotations

from typing import Any

from smpc_ehr.analyses.common.tidy import Row, level, moment_rows


def tidy_summary(result: dict[str, Any]) -> list[Row]:
    if "strata" in result:
        blocks = [(level(result["by"], s), body) for s, body in result["strata"].items()]
    else:
        blocks = [("", result)]
    return [
        r
        for group, body in blocks
        for variable, moments in body["variables"].items()
        for r in moment_rows(moments, group=group, variable=variable)
    ]
