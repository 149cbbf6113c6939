"""Readable terminal tables for released results.

`render_result(result, analysis)` picks one renderer per analysis (`RENDERERS`); an
unknown analysis, or none given, gets the generic rendering (counts, else `key: value`
lines). Counts are printed with thousands separators, estimates to 4 significant
digits, correlations to 3 decimals and p-values as R and scipy print them. A
suppressed count shows as "<t" (t the small-cell threshold), explained at the bottom
together with how missing values were treated.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from smpc_ehr.analyses import ANALYSES
from smpc_ehr.analyses.common.text import (
    BAR_WIDTH,
    MOMENT_HEADER,
    Body,
    ci_text,
    fmt_count,
    fmt_num,
    footer,
    p_clause,
    render_generic,
    sections,
    table,
)
from smpc_ehr.client import JobResult


def _moment_cells(cell: Body, t: int) -> list[str]:
    """n, missing, mean, sd and se of one released moments cell ("-" if suppressed)."""
    missing = fmt_count(cell.get("missing"), t)
    if cell.get("n") is None or cell.get("mean_suppressed"):
        return [fmt_count(cell.get("n"), t), missing, "-", "-", "-"]
    stats = [fmt_num(cell.get(k)) for k in ("mean", "sd", "se")]
    return [fmt_count(cell["n"], t), missing, *stats]


def _moments_suppressed(cells: Sequence[Body]) -> bool:
    return any(c.get("n") is None or c.get("missing") is None for c in cells)


def _binary_note(cells: Sequence[Body], t: int) -> str:
    """Why a released n has no mean (the binary rule), if some cell shows that."""
    if not any(c.get("mean_suppressed") for c in cells):
        return ""
    return f"-: a 0/1 variable with fewer than {t} ones or zeros (mean, sd, se not released)"


def _render_summary(body: Body) -> str:
    """One row per variable (and per stratum of `by`): n, missing, mean, sd, se."""
    t = body["threshold"]
    if "strata" in body:
        pairs = [
            (level, name, cell)
            for level, stratum in body["strata"].items()
            for name, cell in stratum["variables"].items()
        ]
        header = [body["by"], "variable", *MOMENT_HEADER]
        rows = [[level, name, *_moment_cells(cell, t)] for level, name, cell in pairs]
        text = table(header, rows, "llrrrrr")
    else:
        pairs = [("", name, cell) for name, cell in body["variables"].items()]
        rows = [[name, *_moment_cells(cell, t)] for _, name, cell in pairs]
        text = table(["variable", *MOMENT_HEADER], rows, "lrrrrr")
    note = "sd: sample standard deviation (n - 1); se = sd / sqrt(n)"
    cells = [cell for _, _, cell in pairs]
    note = "\n".join(filter(None, [note, _binary_note(cells, t)]))
    return sections(text, note, footer(body, _moments_suppressed(cells)))


def _render_correlation(body: Body) -> str:
    """The Pearson correlation matrix with n, then each variable's mean, sd and missing."""
    t = body["threshold"]
    names = list(body["variables"])
    missing = body.get("missing") or {}
    if body.get("suppressed") or body.get("matrix") is None:
        head = f"correlation suppressed: fewer than {t} patients have all of {', '.join(names)}"
        if body.get("moments_suppressed"):
            head = (
                f"correlation suppressed: among the n = {fmt_count(body['n'], t)} patients "
                f"with all variables, a 0/1 variable has fewer than {t} ones or zeros"
            )
        rows = [[v, fmt_count(missing.get(v), t)] for v in names]
        text = table(["variable", "missing"], rows, "lr")
        return sections(head, text, footer(body, True))
    matrix = body["matrix"]
    corr = [
        [v, *("NA" if r is None else f"{r:.3f}" for r in row)]
        for v, row in zip(names, matrix, strict=True)
    ]
    head = f"Pearson correlation, n = {fmt_count(body['n'], t)} patients with all variables"
    variances = [body["covariance"][i][i] for i in range(len(names))]
    sds = [None if v is None else math.sqrt(max(v, 0.0)) for v in variances]
    per_var = [
        [v, fmt_num(m), fmt_num(sd), fmt_count(missing.get(v), t)]
        for v, m, sd in zip(names, body["means"], sds, strict=True)
    ]
    parts = [head + "\n" + table(["", *names], corr, "l" + "r" * len(names))]
    if any(r is None for row in matrix for r in row):
        parts.append("NA: undefined (a variable is constant among these patients)")
    note = "mean and sd over the same patients; missing: patients without the variable"
    parts.append(note + "\n" + table(["variable", "mean", "sd", "missing"], per_var, "lrrr"))
    suppressed = any(missing.get(v) is None for v in names)
    return sections(*parts, footer(body, suppressed))


def _bin_label(lo: float, hi: float, last: bool) -> str:
    return f"[{lo:g}, {hi:g}{']' if last else ')'}"


def _bar(n: int | None, top: int) -> str:
    if not n or not top:
        return ""
    return "#" * max(1, round(BAR_WIDTH * n / top))


def _render_histogram(body: Body) -> str:
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
    return sections(text, extra, footer(body, any(n is None for n in cells)))


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


def _render_quantiles(body: Body) -> str:
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
    parts.append("\n".join(lines))
    suppressed = body.get("n") is None or ("missing" in body and body["missing"] is None)
    return sections(*parts, footer(body, suppressed))


def _chi_square_line(body: Body) -> str:
    if body.get("test_refused"):
        return f"test refused: {body['test_refused']}"
    test = body.get("test")
    if not test:
        return ""
    line = (
        f"chi-square = {fmt_num(test['statistic'])}, df = {test['df']}, "
        f"{p_clause(test['p_value'])} ({test.get('method', 'chi-square test')})"
    )
    expected = [e for row in body.get("expected") or [] for e in row]
    if expected and min(expected) < 5:
        line += (
            f"\nwarning: smallest expected count {fmt_num(min(expected), 3)} < 5: "
            "the chi-square approximation may be poor"
        )
    return line


def _render_contingency(body: Body) -> str:
    """The cross table, with row and column totals when released, then the test."""
    t = body["threshold"]
    counts, row_totals, col_totals = body["counts"], body.get("row_totals"), body.get("col_totals")
    header = [f"{body['row']} \\ {body['col']}", *body["col_levels"]]
    rows = [
        [level, *(fmt_count(n, t) for n in line)]
        for level, line in zip(body["row_levels"], counts, strict=True)
    ]
    if row_totals is not None and col_totals is not None:
        header.append("total")
        for row, total in zip(rows, row_totals, strict=True):
            row.append(fmt_count(total, t))
        rows.append(["total", *(fmt_count(n, t) for n in col_totals), fmt_count(body["n"], t)])
    text = table(header, rows, "l" + "r" * (len(header) - 1))
    missing = f"missing: {fmt_count(body.get('missing'), t)}"
    suppressed = any(n is None for line in counts for n in line) or body.get("missing") is None
    return sections(text, missing, _chi_square_line(body), footer(body, suppressed))


def _render_ttest(body: Body) -> str:
    """A group table (n, missing, mean, sd, se), then t, df, p and the difference."""
    t = body["threshold"]
    groups = body["groups"]
    rows = [[level, *_moment_cells(groups[level], t)] for level in body["levels"]]
    head = f"{body['variable']} by {body['group']}"
    text = head + "\n" + table([body["group"], *MOMENT_HEADER], rows, "lrrrrr")
    if body.get("test_refused"):
        test = f"test refused: {body['test_refused']}"
    else:
        test = (
            f"{body.get('method', 't-test')}\n"
            f"t = {fmt_num(body['statistic'])}, df = {fmt_num(body['df'], grouping=False)}, "
            f"{p_clause(body['p_value'])}\n"
            f"{body.get('estimate_is', 'difference')} = {fmt_num(body['estimate'])} "
            f"({ci_text(body['ci95'])})"
        )
    cells = [groups[level] for level in body["levels"]]
    text = "\n".join(filter(None, [text, _binary_note(cells, t)]))
    return sections(text, test, footer(body, _moments_suppressed(cells)))


def _render_odds_ratio(body: Body) -> str:
    """The 2x2 table of exposure x outcome, then OR (95% CI), z and p."""
    t = body["threshold"]
    exposure, outcome, cells = body["exposure"], body["outcome"], body["table"]
    header = ["", f"{outcome} = 1", f"{outcome} = 0"]
    rows = [
        [f"{exposure} = {flag}", fmt_count(line["outcome_1"], t), fmt_count(line["outcome_0"], t)]
        for flag, line in (("1", cells["exposed"]), ("0", cells["unexposed"]))
    ]
    text = table(header, rows, "lrr")
    missing = f"missing: {fmt_count(body.get('missing'), t)}"
    if body.get("estimate_refused"):
        estimate = f"odds ratio refused: {body['estimate_refused']}"
    else:
        estimate = (
            f"odds ratio = {fmt_num(body['odds_ratio'])} ({ci_text(body['ci95'])}), "
            f"z = {fmt_num(body['statistic'])}, {p_clause(body['p_value'])}\n"
            f"method: {body.get('method', '')}"
        )
    released = [n for line in cells.values() for n in line.values()] + [body.get("missing")]
    return sections(text, missing, estimate, footer(body, None in released))


RENDERERS: dict[str, Callable[[Body], str]] = {
    "summary": _render_summary,
    "correlation": _render_correlation,
    "histogram": _render_histogram,
    "quantiles": _render_quantiles,
    "contingency": _render_contingency,
    "ttest": _render_ttest,
    "odds_ratio": _render_odds_ratio,
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
