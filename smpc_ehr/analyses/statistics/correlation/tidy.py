"""The correlation's tidy rows: n, each variable's mean and missing, and per pair of
variables (`variable`, `term`) the correlation (with its 95% CI by Fisher's z) and
covariance, and (exact runs) each pair's p-value."""

from __future__ import annotations

from typing import Any

from smpc_ehr.analyses.common.tidy import Row, count_row, row


def tidy_correlation(result: dict[str, Any]) -> list[Row]:
    names = result["variables"]
    hidden = bool(result.get("suppressed"))
    moments_hidden = hidden or bool(result.get("moments_suppressed"))
    rows = [row("n", result.get("n"), suppressed=hidden)]
    means = result.get("means") or [None] * len(names)
    for i, name in enumerate(names):
        rows.append(count_row("missing", result["missing"].get(name), variable=name))
        rows.append(row("mean", means[i], variable=name, suppressed=moments_hidden))
    cis, ps = result.get("ci95"), result.get("p_values")
    for key, stat in (("matrix", "correlation"), ("covariance", "covariance")):
        matrix = result.get(key)
        for i, a in enumerate(names):
            for j, b in enumerate(names):
                value = None if matrix is None else matrix[i][j]
                ci = cis[i][j] if stat == "correlation" and cis else None
                rows.append(row(stat, value, variable=a, term=b, ci=ci, suppressed=moments_hidden))
    if ps is not None:  # exact runs: each pair's p-value (t on n - 2 df)
        for i, a in enumerate(names):
            for j, b in enumerate(names):
                if i != j:
                    rows.append(row("p_value", ps[i][j], variable=a, term=b))
    return rows
