"""The quantiles' terminal table: one row per q, with n, the grid and the method."""

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


def _quantile_text(value: float | None, note: str | None, suppressed: bool, body: Body) -> str:
    low, high = body["range"]
    if suppressed:
        return "suppressed"
    if note and note.startswith("below_range"):
        return f"<= {low:g}"
    if note and note.startswith("above_range"):
        return f"> {high:g}"
    if value is None:
        return "NA"
    step = f"{body['resolution']:.10f}".rstrip("0")
    return f"{value:,.{len(step.split('.')[1])}f}"


def render_quantiles(body: Body) -> str:
    """One row per requested quantile, with n, the grid and the method."""
    t = body["threshold"]
    qs, values, suppressed = body["q"], body["values"], body["suppressed"]
    notes = body.get("notes") or [None] * len(qs)
    rows = [
        [f"{q:g}", _quantile_text(v, note, s, body)]
        for q, v, s, note in zip(qs, values, suppressed, notes, strict=True)
    ]
    low, high = body["range"]
    head = f"{body['variable']}: n = {fmt_count(body.get('n'), t)} patients with a value"
    if "missing" in body:  # results from before the missing count was released lack it
        head += f", missing: {fmt_count(body['missing'], t)}"
    parts = [head + "\n" + table(["q", "value"], rows, "rr")]
    lines = [f"q = {q:g}: {note}" for q, note in zip(qs, notes, strict=True) if note]
    if any(suppressed):
        lines.append(f"suppressed: fewer than {t} patients on one side of the quantile")
    lines.append(f"grid: step {body['resolution']:g} over [{low:g}, {high:g}]")
    lines.append(f"method: {body.get('method', '')}")
    if body.get("n_noise_sd") is not None:
        sd = fmt_num(body["n_noise_sd"], 3)
        lines.append(f"n: noise sd {sd} (the sum of the noisy grid cells)")
    parts.append("\n".join(lines))
    suppressed = body.get("n") is None or ("missing" in body and body["missing"] is None)
    return sections(*parts, footer(body, suppressed)) + dp_line(body)
