"""The histogram's terminal table: one row per bin with its count and a bar."""

from __future__ import annotations

from smpc_ehr.analyses.common.text import (
    BAR_WIDTH,
    Body,
    dp_line,
    fmt_count,
    footer,
    sections,
    table,
)


def _bin_label(lo: float, hi: float, last: bool) -> str:
    return f"[{lo:g}, {hi:g}{']' if last else ')'}"


def _bar(n: int | None, top: int) -> str:
    if not n or not top:
        return ""
    return "#" * max(1, round(BAR_WIDTH * n / top))


def render_histogram(body: Body) -> str:
    """One row per bin [lo, hi) with its count and a bar scaled to the largest bin."""
    t = body["threshold"]
    edges, counts = body["edges"], body["counts"]
    top = max((n for n in counts if n is not None), default=0)
    rows = [
        [_bin_label(lo, hi, i == len(counts) - 1), fmt_count(n, t), _bar(n, top)]
        for i, (lo, hi, n) in enumerate(zip(edges, edges[1:], counts, strict=False))
    ]
    text = table([body["variable"], "patients", ""], rows, "lrl")
    span = f"[{edges[0]:g}, {edges[-1]:g}]"
    extra = (
        f"outside {span}: {fmt_count(body.get('outside'), t)}\n"
        f"missing: {fmt_count(body.get('missing'), t)}"
    )
    cells = [*counts, body.get("outside"), body.get("missing")]
    return sections(text, extra, footer(body, any(n is None for n in cells))) + dp_line(body)
