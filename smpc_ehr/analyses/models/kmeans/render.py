"""The k-means clustering's terminal table: one row per cluster (each feature's column
with one number of decimals), then the fit."""

from __future__ import annotations

from smpc_ehr.analyses.common.text import (
    Body,
    dp_line,
    fmt_column,
    fmt_count,
    fmt_num,
    footer,
    sections,
    table,
)


def render_kmeans(body: Body) -> str:
    """One row per cluster: size, centroid in the features' units, profile means; N and
    the inertia are withheld (None) when a cluster is suppressed."""
    t = body["threshold"]
    features = list(body["features"])
    profiles = body.get("profiles") or [{} for _ in body["centroids"]]
    profile_names = list(profiles[0]) if profiles and profiles[0] else []
    centroids = body["centroids"]
    # Each feature's (and profile's) column in one unit: one number of decimals.
    columns = [
        _column([centroid[j] if centroid else None for centroid in centroids])
        for j in range(len(features))
    ] + [_column([profile[name] for profile in profiles]) for name in profile_names]
    rows = [
        [str(c), fmt_count(size, t), *(column[c] for column in columns)]
        for c, size in enumerate(body["sizes"])
    ]
    header = ["cluster", "n", *features, *(f"mean {name}" for name in profile_names)]
    text = table(header, rows, "l" + "r" * (len(header) - 1))
    n, inertia = body["n"], body["inertia"]
    private = bool(body.get("dp"))
    # patients left out for a missing feature: released from the threshold on (exact runs)
    left_out = "NA" if private else fmt_count(body.get("missing"), t)
    fit = (
        f"n = {'withheld' if n is None else f'{n:,}'}, left out (missing values): {left_out}, "
        f"k = {body['k']}, inertia = "
        f"{'withheld' if inertia is None else fmt_num(inertia)} "
        f"({body['inertia_units']}), {body['iterations']} Lloyd steps, {_stopped(body)}"
        f"\nmode {body['mode']}: {body['leakage']}"
    )
    notes = "\n".join(body.get("notes") or [])
    suppressed = any(size is None for size in body["sizes"])
    suppressed |= "missing" in body and body["missing"] is None and not private
    return sections(text, fit, *([notes] if notes else []), footer(body, suppressed)) + dp_line(
        body
    )


def _column(values: list[float | None]) -> list[str]:
    """`fmt_column` of the released values, "-" for a withheld one."""
    shown = iter(fmt_column([v for v in values if v is not None]))
    return [next(shown) if v is not None else "-" for v in values]


def _stopped(body: Body) -> str:
    """How the steps ended: converged or not, or (differentially private, `converged`
    None) after a number of steps fixed in advance."""
    if body["converged"] is None:
        return "a fixed number (differentially private)"
    return "converged" if body["converged"] else "NOT converged"
