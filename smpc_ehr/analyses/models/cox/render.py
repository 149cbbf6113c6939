"""The Cox regression's terminal table, as statsmodels' PHReg summary prints it: per
feature the coefficient, hazard ratio, standard error, z, p and the 95% CI of the
hazard ratio; then N, events, iterations, ties, strata and the reference levels."""

from __future__ import annotations

from smpc_ehr.analyses.common.text import (
    Body,
    fmt_column,
    fmt_count,
    fmt_num,
    fmt_p,
    footer,
    sections,
    table,
)


def render_cox(body: Body) -> str:
    """The coefficient table and the fit's lines."""
    names = list(body["coefficients"])
    columns = [
        fmt_column([body[key][n] for n in names])
        for key in ("coefficients", "hazard_ratios", "std_errors", "z")
    ]
    ends = fmt_column([body["ci95"][n][i] for i in (0, 1) for n in names])  # lows, highs
    rows = [
        [
            name,
            *(column[i] for column in columns),
            fmt_p(body["p_values"][name]),
            f"{ends[i]} to {ends[len(names) + i]}",
        ]
        for i, name in enumerate(names)
    ]
    header = ["", "coef", "HR", "std err", "z", "P>|z|", "95% CI (HR)"]
    text = table(header, rows, "lrrrrrr")
    strata = "baseline hazard per hospital" if body.get("stratify") == "hospital" else "no strata"
    fit = [
        f"n = {body['n']:,}, events = {body['events']:,}, left out "
        f"{fmt_count(body.get('left_out'), body['threshold'])}, {body['iterations']} Newton "
        f"iterations, {'converged' if body['converged'] else 'NOT converged'}",
        f"ties: Breslow; time in {body['time_unit']}s on the grid 0..{body['horizon']} "
        f"(event: {body['event']}); {strata}",
    ]
    references = body.get("reference_levels") or {}
    if references:
        named = ", ".join(f"{v} = {level}" for v, level in references.items())
        fit.append(f"reference levels: {named}")
    c = body.get("concordance")
    note = body.get("concordance_note") or ""
    fit.append(f"concordance: {fmt_num(c)} ({note})" if c is not None else f"concordance: {note}")
    fit.append(f"mode {body['mode']}: {body['leakage']}")
    return sections(text, "\n".join(fit), footer(body, body.get("left_out") is None))
