"""Runs the report's sections in order and writes what they return: report.md (tables
as Markdown, figures linked), a self-contained report.html (PNGs embedded as base64,
no external assets) and figures.json (the header and every section's tables and raw
figures), under a header stating the machine, versions, commit, date, seeds, size and
run time. A section whose module is missing is reported as "not built yet"; one that
raises is reported with its error (and makes the exit status 1), not a crash.
"""

from __future__ import annotations

import base64
import html
import importlib
import json
import math
import os
import platform
import re
import subprocess
import time
import traceback
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from benchsuite.harness import ROOT, log

from evaluation.section import Context, Section, Table

SECTIONS = ("accuracy", "overhead", "scalability", "utility", "reidentification")
"""The report's sections, in order: modules of scripts/evaluation/."""
PACKAGES = ("torch", "mpyc", "crypten", "numpy", "scikit-learn", "statsmodels", "matplotlib")


@dataclass
class Outcome:
    """What became of one section: its Section, or why there is none."""

    name: str
    status: str
    """"ok", "not built yet" or "failed"."""
    seconds: float
    section: Section | None = None
    error: str = ""


@dataclass
class Header:
    """What the report states before any number: where, with what, when and how big."""

    size: str
    seed: int
    started_utc: str
    machine: dict[str, Any]
    versions: dict[str, str]
    commit: str
    command: str
    load_average_start: list[float]
    load_average_end: list[float] = field(default_factory=list)
    total_seconds: float = 0.0
    section_seconds: dict[str, float] = field(default_factory=dict)
    section_seeds: dict[str, Any] = field(default_factory=dict)
    """The seeds each section derived from the base seed (its raw "seeds")."""


# --- the header -----------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """CPU count and model, RAM, OS (Linux /proc; "unknown" elsewhere)."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gib: float | None = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gib = round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "ram_gib": ram_gib,
        "os": platform.platform(),
    }


def versions() -> dict[str, str]:
    """Python's and the packages' versions (installed metadata: nothing is imported)."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_commit() -> str:
    """The checkout's commit, with "+changes" if the work tree differs from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (head or "unknown") + (" +changes" if dirty else "")


def load_average() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


# --- running ---------------------------------------------------------------------------


def run_section(name: str, context: Context) -> Outcome:
    """Import scripts/evaluation/<name>.py and run it; a missing module or an error is
    an Outcome saying so."""
    start = time.perf_counter()
    try:
        module = importlib.import_module(f"evaluation.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"evaluation.{name}":
            log(f"[{name}] not built yet: scripts/evaluation/{name}.py does not exist")
            return Outcome(name, "not built yet", 0.0)
        log(f"[{name}] FAILED to import:\n{traceback.format_exc()}")
        return Outcome(name, "failed", 0.0, error=f"{type(exc).__name__}: {exc}")
    except Exception as exc:
        log(f"[{name}] FAILED to import:\n{traceback.format_exc()}")
        return Outcome(name, "failed", 0.0, error=f"{type(exc).__name__}: {exc}")
    log(f"[{name}] running ({context.size}) ...")
    try:
        section: Section = module.run(context)
    except KeyboardInterrupt:
        raise
    except Exception as exc:
        seconds = time.perf_counter() - start
        log(f"[{name}] FAILED after {seconds:.1f} s:\n{traceback.format_exc()}")
        return Outcome(name, "failed", seconds, error=f"{type(exc).__name__}: {exc}")
    seconds = time.perf_counter() - start
    log(f"[{name}] done in {seconds:.1f} s")
    return Outcome(name, "ok", seconds, section)


def run_report(context: Context, names: list[str]) -> int:
    """Run the sections `names` and write the report into context.out; 1 if one failed."""
    import sys

    header = Header(
        size=context.size,
        seed=context.seed,
        started_utc=datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        machine=machine(),
        versions=versions(),
        commit=git_commit(),
        command=" ".join(["python", "scripts/evaluate.py", *sys.argv[1:]]),
        load_average_start=load_average(),
    )
    start = time.perf_counter()
    outcomes = [run_section(name, context) for name in names]
    header.total_seconds = round(time.perf_counter() - start, 1)
    header.section_seconds = {o.name: round(o.seconds, 1) for o in outcomes}
    header.section_seeds = {
        o.name: o.section.raw["seeds"]
        for o in outcomes
        if o.section is not None and "seeds" in o.section.raw
    }
    header.load_average_end = load_average()
    write(context.out, header, outcomes)
    log(f"report written to {context.out} ({header.total_seconds:.0f} s in all)")
    return 1 if any(o.status == "failed" for o in outcomes) else 0


def write(out: Path, header: Header, outcomes: list[Outcome]) -> None:
    (out / "report.md").write_text(markdown(header, outcomes))
    (out / "report.html").write_text(html_page(header, outcomes, out))
    (out / "figures.json").write_text(json.dumps(raw(header, outcomes), indent=1, default=str))


def raw(header: Header, outcomes: list[Outcome]) -> dict[str, Any]:
    """figures.json: the header, and per section its status, tables and raw figures."""
    sections: dict[str, Any] = {}
    for o in outcomes:
        entry: dict[str, Any] = {"status": o.status, "seconds": round(o.seconds, 1)}
        if o.error:
            entry["error"] = o.error
        if o.section is not None:
            entry |= {
                "title": o.section.title,
                "tables": [asdict(t) for t in o.section.tables],
                "figures": [asdict(f) for f in o.section.figures],
                "raw": o.section.raw,
            }
        sections[o.name] = entry
    return {"header": asdict(header), "sections": sections}


# --- formatting -----------------------------------------------------------------------


def cell(value: Any) -> str:
    """A table cell: None as "-", floats to about 4 significant figures."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        if value == 0.0:
            return "0"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        if abs(value) >= 1e-3:
            return f"{value:.4g}"
        return f"{value:.2e}"
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10000 else str(value)
    return str(value)


def header_lines(h: Header) -> list[str]:
    m, v = h.machine, h.versions
    return [
        f"Date: {h.started_utc}; total run time {h.total_seconds:.0f} s; size `{h.size}`; "
        f"base seed {h.seed} (each section states the seeds it derived).",
        f"Command: `{h.command}`",
        f"Commit: `{h.commit}`",
        f"Machine: {m['cpus']} CPUs ({m['cpu_model']}), {m['ram_gib']} GiB RAM, {m['os']}; "
        f"load average (1, 5, 15 min) {h.load_average_start} at the start, "
        f"{h.load_average_end} at the end (other work on the machine inflates timings).",
        "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()) + ".",
        "Run time per section: "
        + (", ".join(f"{k} {t:.0f} s" for k, t in h.section_seconds.items()) or "none")
        + ".",
        "Seeds derived by the sections: "
        + ("; ".join(f"{k} {seeds}" for k, seeds in h.section_seeds.items()) or "none")
        + ".",
    ]


def section_status(o: Outcome) -> str:
    if o.status == "not built yet":
        return f"Not built yet: `scripts/evaluation/{o.name}.py` does not exist in this checkout."
    return f"FAILED after {o.seconds:.0f} s: `{o.error}` (the traceback went to stderr)."


def markdown_table(t: Table) -> list[str]:
    def row(values: list[Any]) -> str:
        return "| " + " | ".join(cell(v).replace("|", "\\|") for v in values) + " |"

    lines = [f"**{t.caption}**", "", row(t.headers), "|" + "---|" * len(t.headers)]
    lines += [row(r) for r in t.rows]
    if t.note:
        lines += ["", t.note]
    return [*lines, ""]


def markdown(h: Header, outcomes: list[Outcome]) -> str:
    lines = ["# Evaluation report (issue 19)", "", *(f"- {x}" for x in header_lines(h)), ""]
    for o in outcomes:
        title = o.section.title if o.section else o.name
        lines += [f"## {title}", "", f"_(section `{o.name}`, {o.seconds:.0f} s)_", ""]
        if o.section is None:
            lines += [section_status(o), ""]
            continue
        lines += [o.section.text.strip(), ""]
        for t in o.section.tables:
            lines += markdown_table(t)
        for f in o.section.figures:
            lines += [f"![{f.caption}]({f.path})", "", f"_{f.caption}_", ""]
    return "\n".join(lines)


CSS = """
body { font-family: sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em;
       line-height: 1.45; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: right; }
th { background: #eee; } td:first-child, th:first-child { text-align: left; }
caption { font-weight: bold; text-align: left; padding: 0.3em 0; }
figure { margin: 1em 0; } img { max-width: 100%; border: 1px solid #ddd; }
.note { font-size: 0.9em; color: #444; } .status { color: #a00; }
code { background: #f4f4f4; padding: 0 0.2em; }
"""


def inline(text: str) -> str:
    """Text as HTML: escaped, `code` spans as <code>."""
    return re.sub(r"`([^`]*)`", r"<code>\1</code>", html.escape(text))


def _paragraphs(text: str) -> str:
    blocks = [b.strip() for b in text.strip().split("\n\n") if b.strip()]
    return "".join(f"<p>{inline(b)}</p>" for b in blocks)


def html_table(t: Table) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in t.headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell(v))}</td>" for v in r) + "</tr>" for r in t.rows
    )
    note = f'<p class="note">{html.escape(t.note)}</p>' if t.note else ""
    caption = html.escape(t.caption)
    return f"<table><caption>{caption}</caption><tr>{head}</tr>{body}</table>{note}"


def html_figure(out: Path, path: str, caption: str) -> str:
    png = out / path
    if not png.is_file():
        return f'<p class="status">missing figure {html.escape(path)}</p>'
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    text = html.escape(caption)
    return (
        f'<figure><img alt="{text}" src="data:image/png;base64,{data}">'
        f"<figcaption>{text}</figcaption></figure>"
    )


def html_page(h: Header, outcomes: list[Outcome], out: Path) -> str:
    parts = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        f"<title>Evaluation report</title><style>{CSS}</style></head><body>",
        "<h1>Evaluation report (issue 19)</h1><ul>",
        *(f"<li>{inline(x)}</li>" for x in header_lines(h)),
        "</ul>",
    ]
    for o in outcomes:
        title = o.section.title if o.section else o.name
        parts.append(f"<h2>{html.escape(title)}</h2>")
        parts.append(f'<p class="note">section {o.name}, {o.seconds:.0f} s</p>')
        if o.section is None:
            parts.append(f'<p class="status">{inline(section_status(o))}</p>')
            continue
        parts.append(_paragraphs(o.section.text))
        parts += [html_table(t) for t in o.section.tables]
        parts += [html_figure(out, f.path, f.caption) for f in o.section.figures]
    parts.append("</body></html>")
    return "\n".join(parts)
