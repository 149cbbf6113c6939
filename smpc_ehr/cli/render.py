"""Readable terminal tables for released results."""

from __future__ import annotations

from typing import Any

from smpc_ehr.client import JobResult


def _count_text(cell: dict[str, Any], threshold: int) -> str:
    return f"suppressed (< {threshold})" if cell["suppressed"] else str(cell["count"])


def table(header: list[str], rows: list[list[str]]) -> str:
    """A plain aligned text table."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
    return "\n".join(lines)


def render_result(result: JobResult) -> str:
    """The result of a job as the analyst reads it in a terminal."""
    head = (
        f"{result.protocol} on {len(result.parties)} parties "
        f"({', '.join(result.parties)}), backend {result.backend}, "
        f"{result.elapsed_seconds:.2f} s"
    )
    body = result.result
    threshold = body.get("threshold", 0)
    if "cells" in body:
        by = body["by"]
        rows = [[c[v] for v in by] + [_count_text(c, threshold)] for c in body["cells"]]
        text = table([*by, "patients"], rows)
    elif "count" in body:
        text = f"patients: {_count_text(body, threshold)}"
    else:
        text = "\n".join(f"{k}: {v}" for k, v in body.items())
    if "threshold" in body:
        text += f"\nsmall-cell threshold: {threshold}"
    return f"{head}\n{text}"
