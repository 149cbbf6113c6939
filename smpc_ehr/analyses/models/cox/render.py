"""The Cox regression's terminal table, as statsmodels' PHReg summary prints it: per
feature the coefficient, hazard ratio, standard error, z, p and the 95% CI of the
hazard ratio; then N, events, iterations, ties, strata and the reference levels."""

from __future__ import annotations

from smpc_ehr.analyses.common.text import Body, fmt_num, fmt_p, footer, sections, table


def render_cox(body: Body) -> str:
    """The coefficient table and the fit's lines."""
    rows = [
        [
            name,
            fmt_num(body["coefficients"][name]),
            fmt_num(body["hazard_ratios"][name]),
            fmt_num(body["std_errors"][name]),
            fmt_num(body["z"][name]),
            fmt_p(body["p_values"][name]),
            f"{fmt_num(body['ci95'][name][0])} to {fmt_num(body['ci95'][name][1])}",
        ]
        for name in body["coefficients"]
    ]
    header = ["", "coef", "HR", "std err", "z", "P>|z|", "95% CI (HR)"]
    text = table(header, rows, "lrrrrrr")
    strata = "baseline hazard per hospital" if body.get("stratify") == "hospital" else "no strata"
    fit = [
        f"n = {body['n']:,}, events = {body['events']:,}, {body['iterations']} Newton "
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
    return sections(text, "\n".join(fit), footer(body, False))
