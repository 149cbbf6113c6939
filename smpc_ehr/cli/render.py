"""Readable terminal tables for released results.

`render_result(result, analysis)` uses the analysis's own `render` (each package's
render.py; the models' renderers still in `RENDERERS` here); an unknown analysis, or
none given, gets the generic rendering (counts, else `key: value` lines). Number
formats are in analyses/common/text.py.
"""

from __future__ import annotations

from collections.abc import Callable

from smpc_ehr.analyses import ANALYSES
from smpc_ehr.analyses.common.text import (
    Body,
    fmt_count,
    fmt_num,
    fmt_p,
    footer,
    render_generic,
    sections,
    table,
)
from smpc_ehr.client import JobResult


def _render_logistic(body: Body) -> str:
    """A coefficient table as statsmodels prints it, plus the odds ratios."""
    names = list(body["coefficients"])
    rows = [
        [
            name,
            fmt_num(body["coefficients"][name]),
            fmt_num(body["std_errors"][name]),
            fmt_num(body["coefficients"][name] / body["std_errors"][name]),
            fmt_p(body["p_values"][name]),
            fmt_num(body["odds_ratios"][name]),
            f"{fmt_num(body['ci95'][name][0])} to {fmt_num(body['ci95'][name][1])}",
        ]
        for name in names
    ]
    header = ["", "coef", "std err", "z", "P>|z|", "odds ratio", "95% CI (odds ratio)"]
    text = table(header, rows, "lrrrrrr")
    fit = (
        f"n = {body['n']:,}, {body['iterations']} Newton iterations, "
        f"{'converged' if body['converged'] else 'NOT converged'}, L2 = {fmt_num(body['l2'])}"
        f"\nmode {body['mode']}: {body['leakage']}"
    )
    evaluation = body.get("evaluation")
    suppressed = False
    parts = [text, fit]
    if evaluation:
        t = body["threshold"]
        (tn, fp), (fn, tp) = evaluation["confusion"]
        cells = [tn, fp, fn, tp]
        suppressed = None in cells or any(c["n"] is None for c in evaluation["calibration"])
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
                fmt_num(c["mean_predicted"]),
                fmt_num(c["observed_rate"]),
            ]
            for c in evaluation["calibration"]
        ]
        parts.append(
            "calibration\n" + table(["score", "n", "mean predicted", "observed"], rows, "lrrr")
        )
    return sections(*parts, footer(body, suppressed))


def _render_kmeans(body: Body) -> str:
    """One row per cluster: size, centroid in the features' units, profile means; N and
    the inertia are withheld (None) when a cluster is suppressed."""
    t = body["threshold"]
    features = list(body["features"])
    profiles = body.get("profiles") or [{} for _ in body["centroids"]]
    profile_names = list(profiles[0]) if profiles and profiles[0] else []
    rows = [
        [
            str(c),
            fmt_count(size, t),
            *((fmt_num(v) for v in centroid) if centroid else ["-"] * len(features)),
            *(
                fmt_num(profile[name]) if profile[name] is not None else "-"
                for name in profile_names
            ),
        ]
        for c, (size, centroid, profile) in enumerate(
            zip(body["sizes"], body["centroids"], profiles, strict=True)
        )
    ]
    header = ["cluster", "n", *features, *(f"mean {name}" for name in profile_names)]
    text = table(header, rows, "l" + "r" * (len(header) - 1))
    n, inertia = body["n"], body["inertia"]
    fit = (
        f"n = {'withheld' if n is None else f'{n:,}'}, k = {body['k']}, inertia = "
        f"{'withheld' if inertia is None else fmt_num(inertia)} "
        f"({body['inertia_units']}), {body['iterations']} Lloyd steps, "
        f"{'converged' if body['converged'] else 'NOT converged'}"
        f"\nmode {body['mode']}: {body['leakage']}"
    )
    notes = "\n".join(body.get("notes") or [])
    suppressed = any(size is None for size in body["sizes"])
    return sections(text, fit, *([notes] if notes else []), footer(body, suppressed))


RENDERERS: dict[str, Callable[[Body], str]] = {
    "logistic_regression": _render_logistic,
    "kmeans": _render_kmeans,
}
"""Renderers by the template's `analysis`; others get `render_generic`."""


def render_result(result: JobResult, analysis: str | None = None, strict: bool = False) -> str:
    """The result of a job as the analyst reads it in a terminal.

    `analysis` is the template's `analysis` (it picks the analysis's own table); without
    it, or for a result of an unexpected shape, the result is printed generically
    (`strict`: a renderer's failure is raised instead, for tests).
    """
    head = (
        f"{result.protocol} on {len(result.parties)} parties "
        f"({', '.join(result.parties)}), backend {result.backend}, "
        f"{result.elapsed_seconds:.2f} s"
    )
    body = result.result
    registered = ANALYSES.get(analysis or "")
    renderer = RENDERERS.get(analysis or "") or (registered.render if registered else None)
    if renderer is None:
        return f"{head}\n{render_generic(body)}"
    try:
        text = renderer(body)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError):
        if strict:
            raise
        text = render_generic(body)  # never lose a computed result to its layout
    return f"{head}\n{text}"
