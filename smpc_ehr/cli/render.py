"""Readable terminal tables for released results.

`render_result(result, analysis)` uses the analysis's own `render` (each package's
render.py); an unknown analysis, or none given, gets the generic rendering (counts,
else `key: value` lines). Number formats are in analyses/common/text.py.
"""

from __future__ import annotations

from smpc_ehr.analyses import ANALYSES
from smpc_ehr.analyses.common.text import render_generic
from smpc_ehr.client import JobResult
from smpc_ehr.coordinator.cost import cost_line


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
    if result.absent:
        head += (
            f"\ncovers only these {len(result.parties)} hospitals: "
            f"{', '.join(result.absent)} did not take part"
        )
    body = result.result
    foot = f"\n{cost_line(result.cost)}" if result.cost else ""
    if result.data_versions:
        versions = ", ".join(f"{p} {v}" for p, v in sorted(result.data_versions.items()))
        foot += f"\ndata read: {versions}"
    registered = ANALYSES.get(analysis or "")
    if registered is None:
        return f"{head}\n{render_generic(body)}{foot}"
    try:
        text = registered.render(body)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError):
        if strict:
            raise
        text = render_generic(body)  # never lose a computed result to its layout
    return f"{head}\n{text}{foot}"
