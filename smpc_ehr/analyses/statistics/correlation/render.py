"""The correlation's terminal tables: the matrix with n, each pair's r with its 95% CI
(Fisher's z) and p-value, then each variable's mean, sd and missing count."""

from __future__ import annotations

import math

from smpc_ehr.analyses.common.text import (
    Body,
    dp_line,
    fmt_count,
    fmt_num,
    fmt_p,
    footer,
    sections,
    table,
)


def _pairs_table(body: Body, names: list[str]) -> str:
    """Each pair's r with its 95% CI (Fisher's z) and p-value (t on n - 2 df)."""
    rows = []
    for i, a in enumerate(names):
        for j in range(i + 1, len(names)):
            r, ci = body["matrix"][i][j], body["ci95"][i][j]
            rows.append(
                [
                    f"{a} - {names[j]}",
                    "NA" if r is None else f"{r:.3f}",
                    "NA" if ci is None else f"{ci[0]:.3f} to {ci[1]:.3f}",
                    fmt_p(body["p_values"][i][j]),
                ]
            )
    header = ["pair", "r", "95% CI (Fisher z)", "p"]
    return table(header, rows, "lrrr")


def render_correlation(body: Body) -> str:
    """The Pearson correlation matrix with n, then each variable's mean, sd and missing."""
    t = body["threshold"]
    names = list(body["variables"])
    missing = body.get("missing") or {}
    if body.get("suppressed") or body.get("matrix") is None:
        head = f"correlation suppressed: fewer than {t} patients have all of {', '.join(names)}"
        if body.get("moments_suppressed"):
            head = (
                f"correlation suppressed: among the n = {fmt_count(body['n'], t)} patients "
                f"with all variables, a 0/1 variable has fewer than {t} ones or zeros"
            )
        rows = [[v, fmt_count(missing.get(v), t)] for v in names]
        text = table(["variable", "missing"], rows, "lr")
        return sections(head, text, footer(body, True)) + dp_line(body)
    matrix = body["matrix"]
    corr = [
        [v, *("NA" if r is None else f"{r:.3f}" for r in row)]
        for v, row in zip(names, matrix, strict=True)
    ]
    head = f"Pearson correlation, n = {fmt_count(body['n'], t)} patients with all variables"
    variances = [body["covariance"][i][i] for i in range(len(names))]
    sds = [None if v is None else math.sqrt(max(v, 0.0)) for v in variances]
    per_var = [
        [v, fmt_num(m), fmt_num(sd), fmt_count(missing.get(v), t)]
        for v, m, sd in zip(names, body["means"], sds, strict=True)
    ]
    parts = [head + "\n" + table(["", *names], corr, "l" + "r" * len(names))]
    if any(r is None for row in matrix for r in row):
        parts.append("NA: undefined (a variable is constant among these patients)")
    if body.get("p_values") is not None:
        parts.append(_pairs_table(body, names))
    elif body.get("inference_note"):
        parts.append(body["inference_note"])
    note = "mean and sd over the same patients; missing: patients without the variable"
    parts.append(note + "\n" + table(["variable", "mean", "sd", "missing"], per_var, "lrrr"))
    if body.get("noise"):
        parts.append(f"{body['noise']}; the matrix is the nearest valid correlation matrix")
    suppressed = any(missing.get(v) is None for v in names)
    return sections(*parts, footer(body, suppressed)) + dp_line(body)
