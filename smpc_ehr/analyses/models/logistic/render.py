"""The logistic regression's terminal table: coefficients as statsmodels prints them,
with odds ratios, then the held-out evaluation if any."""

from __future__ import annotations

from smpc_ehr.analyses.common.text import (
    Body,
    dp_line,
    fmt_column,
    fmt_count,
    fmt_num,
    fmt_p,
    footer,
    p_clause,
    sections,
    table,
)


def render_logistic(body: Body) -> str:
    """A coefficient table as statsmodels prints it, plus the odds ratios."""
    names = list(body["coefficients"])
    coef = [body["coefficients"][n] for n in names]
    errors = [body["std_errors"][n] for n in names]
    z = [b / s if s else None for b, s in zip(coef, errors, strict=True)]
    ends = fmt_column([body["ci95"][n][i] for i in (0, 1) for n in names])  # lows, then highs
    rows = [
        [name, *cells, f"{ends[i]} to {ends[len(names) + i]}"]
        for i, (name, *cells) in enumerate(
            zip(
                names,
                fmt_column(coef),
                fmt_column(errors),
                fmt_column(z),
                [fmt_p(body["p_values"][n]) for n in names],
                fmt_column([body["odds_ratios"][n] for n in names]),
                strict=True,
            )
        )
    ]
    header = ["", "coef", "std err", "z", "P>|z|", "odds ratio", "95% CI (odds ratio)"]
    text = table(header, rows, "lrrrrrr")
    fit = (
        _dp_fit_lines(body)
        if body.get("dp")
        else f"n = {body['n']:,}, {body['iterations']} Newton iterations, "
        f"{'converged' if body['converged'] else 'NOT converged'}, L2 = {fmt_num(body['l2'])}"
    )
    fit += f"\nmode {body['mode']}: {body['leakage']}"
    if "log_likelihood" in body:  # results of before the summary lack it
        text = sections(_summary_lines(body), text)
    evaluation = body.get("evaluation")
    # a left-out count below the threshold is suppressed (never with epsilon: not released)
    suppressed = "left_out" in body and body["left_out"] is None and not body.get("dp")
    parts = [text, fit]
    if evaluation:
        t = body["threshold"]
        (tn, fp), (fn, tp) = evaluation["confusion"]
        cells = [tn, fp, fn, tp]
        suppressed |= None in cells or any(c["n"] is None for c in evaluation["calibration"])
        parts.append(
            f"held-out evaluation: AUC = {fmt_num(evaluation['auc'])} "
            f"(scores binned by {evaluation['auc_resolution']:g}), "
            f"accuracy at 0.5 = {fmt_num(evaluation['accuracy'])}\n"
            + table(
                ["", "predicted 0", "predicted 1"],
                [
                    ["observed 0", fmt_count(tn, t), fmt_count(fp, t)],
                    ["observed 1", fmt_count(fn, t), fmt_count(tp, t)],
                ],
                "lrr",
            )
        )
        rows = [
            [
                f"[{c['bin'][0]:g}, {c['bin'][1]:g})",
                fmt_count(c["n"], t),
                predicted,
                observed,
            ]
            for c, predicted, observed in zip(
                evaluation["calibration"],
                fmt_column([c["mean_predicted"] for c in evaluation["calibration"]]),
                fmt_column([c["observed_rate"] for c in evaluation["calibration"]]),
                strict=True,
            )
        ]
        parts.append(
            "calibration\n" + table(["score", "n", "mean predicted", "observed"], rows, "lrrr")
        )
    return sections(*parts, footer(body, suppressed) + dp_line(body))


def _summary_lines(body: Body) -> str:
    """The header statsmodels' Logit.summary() prints above the coefficients: the
    outcome, observations, events, left out, log-likelihoods, LR test, pseudo-R2, AIC
    and BIC; "NA" where not released, with the reason."""
    t = body.get("threshold", 0)
    events, left = body.get("events"), body.get("left_out")
    noisy = " (noisy)" if body.get("dp") else ""
    lines = [
        f"outcome: {body.get('outcome', '')}   observations: {body['n']:,}{noisy}   "
        f"events: {'NA' if events is None else f'{events:,}'}   "
        f"left out (missing values): {'NA' if body.get('dp') else fmt_count(left, t)}",
    ]
    if body.get("reference_levels"):
        levels = ", ".join(f"{v} = {level}" for v, level in body["reference_levels"].items())
        lines.append(f"reference levels: {levels}")
    lr_df = body.get("lr_df")
    lines += [
        f"log-likelihood: {fmt_num(body.get('log_likelihood'), 7)}   "
        f"null log-likelihood: {fmt_num(body.get('null_log_likelihood'), 7)}   "
        f"pseudo-R2 (McFadden): {fmt_num(body.get('pseudo_r2'))}",
        f"LR test against the null model: chi2 = {fmt_num(body.get('lr_chi2'))}, "
        f"df = {'NA' if lr_df is None else lr_df}, {p_clause(body.get('lr_p'))}   "
        f"AIC: {fmt_num(body.get('aic'), 7)}   BIC: {fmt_num(body.get('bic'), 7)}",
    ]
    if body.get("l2") and body.get("log_likelihood") is not None:
        lines.append("L2 > 0: the log-likelihood is at the penalised estimate (no penalty term)")
    if body.get("summary_note"):
        lines.append(f"NA: {body['summary_note']}")
    return "\n".join(lines)


def _dp_fit_lines(body: Body) -> str:
    """A differentially private fit's n (noisy), fixed steps, clipping bounds, and a
    warning when the noise floor of the Hessian bound (the fit is then shrunk)."""
    bounds = ", ".join(f"{name} {a:g}..{b:g}" for name, (a, b) in body["bounds"].items())
    lines = [
        f"n = {body['n']:,} (noisy), {body['iterations']} noisy Newton steps (a fixed number), "
        f"L2 = {fmt_num(body['l2'])}",
        f"features clipped to: {bounds}",
    ]
    if body["floored_eigenvalues"]:
        lines.append(
            f"{body['floored_eigenvalues']} eigenvalue(s) of the last noisy Hessian raised to "
            "the noise floor: the coefficients are shrunk towards 0 and their standard errors "
            "too small (more patients or a larger epsilon avoid it)"
        )
    return "\n".join(lines)
