"""The k-means clustering's terminal table: one row per cluster, then the fit."""

from __future__ import annotations

from smpc_ehr.analyses.common.text import (
    Body,
    dp_line,
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
        f"({body['inertia_units']}), {body['iterations']} Lloyd steps, {_stopped(body)}"
        f"\nmode {body['mode']}: {body['leakage']}"
    )
    notes = "\n".join(body.get("notes") or [])
    suppressed = any(size is None for size in body["sizes"])
    return sections(text, fit, *([notes] if notes else []), footer(body, suppressed)) + dp_line(
        body
    )


def _stopped(body: Body) -> str:
    """How the steps ended: converged or not, or (differentially private, `converged`
    None) after a number of steps fixed in advance."""
    if body["converged"] is None:
        return "a fixed number (differentially private)"
    return "converged" if body["converged"] else "NOT converged"
