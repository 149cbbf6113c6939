"""Scalability in institutions and in records: the count and logistic regression on
both backends, as the number of hospitals grows (records per hospital fixed) and as the
records per hospital grow (3 hospitals), on real local federations of synthetic
patients (smpc_ehr.data.synth through benchsuite/data.py, cached under .bench-data/).

Each number of hospitals is its own federation (`local up`), whose data files are
replaced by the next size's between record sizes (the parties read them again at the
next job, in its warm-up); per analysis and backend, warm-up
job(s) and then timed jobs, the median time end to end at the analyst, and the
parties' own logged hops (sequential message rounds), messages and bytes (the most any
hospital sent). The slope of a log-log least-squares line gives how each grows:
y ~ x^slope (0: flat, 1: linear, 2: quadratic).

On one 2-core machine every hospital process shares the same two cores, so time with
many hospitals measures CPU sharing as well as the protocol: hops and bytes carry the
network story (on a real network each hospital has its own machine and the time is
about hops x latency + bytes / bandwidth + local work).
"""

from __future__ import annotations

import math
import shutil
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchsuite import harness as h
from benchsuite import timings
from benchsuite.data import cached_federation_data
from benchsuite.harness import PROTOCOLS, log, party_ids
from benchsuite.logreg_data import OUTCOME
from benchsuite.options import DEFAULT_DATA_ROOT

from evaluation.common import by_size, keyed_table, label_log_axes, loglog_slope, pyplot, save
from evaluation.section import Context, Figure, Section

TITLE = "Scalability in hospitals and in records"
FEATURES = ("bmi", "sbp", "hba1c", "ldl")
JOBS = {
    "count": (PROTOCOLS / "rare_disease_count.toml", {"codes": "E11"}),
    "logistic": (
        PROTOCOLS / "logistic_regression.toml",
        {"outcome": OUTCOME, "features": ",".join(FEATURES)},
    ),
}
METRICS = (
    ("seconds", "time per job (s)"),
    ("hops", "hops (rounds)"),
    ("kib", "KiB sent per party"),
)


@dataclass(frozen=True)
class Plan:
    parties: tuple[int, ...]
    records: tuple[int, ...]
    base_records: int
    backends: tuple[str, ...]
    warmup: int
    repeats: int


Key = tuple[str, str]
"""(analysis, backend)."""


def plan(size: str) -> Plan:
    return by_size(
        size,  # type: ignore[arg-type]
        Plan((3, 4), (200, 400), 200, ("mpyc",), 0, 1),
        Plan((3, 5), (1_000, 10_000), 1_000, ("mpyc", "crypten"), 1, 1),
        Plan(
            (3, 5, 7, 9),
            (1_000, 10_000, 100_000, 1_000_000),
            10_000,
            ("mpyc", "crypten"),
            1,
            3,
        ),
    )


def points(p: Plan) -> list[tuple[int, int]]:
    """(hospitals, records per hospital) of every federation, each once."""
    wanted = [(k, p.base_records) for k in p.parties] + [(3, n) for n in p.records]
    return sorted(set(wanted), key=lambda kn: (kn[1], kn[0]))


def measure(k: int, sizes: list[int], p: Plan, seed: int) -> list[dict[str, Any]]:
    """Both analyses on every backend on one federation of k hospitals, at each number
    of records per hospital in `sizes` in turn: the parties read their data per job and
    again when its files change (docs/data.md), so the next size's files are copied over
    the working folder between sizes instead of starting another federation."""
    tag = f"[scalability {k} x {'/'.join(f'{n:,}' for n in sizes)}]"
    folders = []
    for n in sizes:
        name = f"eval-scal-{k}x{n}-seed{seed}"
        data, gen = cached_federation_data(DEFAULT_DATA_ROOT, name, party_ids(k), [n] * k, seed)
        if gen is not None:
            log(f"{tag} generated {k} x {n:,} patients in {gen:.1f} s")
        folders.append(data)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="smpc-eval-scal-") as tmp:
        work = Path(tmp) / "data"
        shutil.copytree(folders[0], work)
        with h.local_federation(work, tag) as fed:
            runs = []
            with h.analyst(fed) as client:
                for n, data in zip(sizes, folders, strict=True):
                    if data is not folders[0]:
                        swap_data(data, work)
                    runs.append((n, run_jobs(client, p, f"{tag} {n:,}")))
            steps = timings.party_steps(fed)
            up = fed.up_seconds
    for n, (ids, seconds, errors) in runs:
        rows += rows_of(k, n, ids, seconds, errors, steps, up, tag)
    return rows


def swap_data(source: Path, work: Path) -> None:
    """Copy every party's files of `source` over `work` (fresh modification times, so
    each party reads them at its next job)."""
    for party in (d for d in source.iterdir() if d.is_dir()):
        for file in party.iterdir():
            shutil.copyfile(file, work / party.name / file.name)


Jobs = tuple[dict[Key, list[str]], dict[Key, list[float]], dict[Key, str]]


def run_jobs(client: Any, p: Plan, tag: str) -> Jobs:
    """Warm-up and timed jobs of both analyses on every backend: job ids, seconds and
    failures by (analysis, backend)."""
    ids: dict[Key, list[str]] = {}
    seconds: dict[Key, list[float]] = {}
    errors: dict[Key, str] = {}
    for backend in p.backends:
        for analysis, (protocol, params) in JOBS.items():
            key = (analysis, backend)
            ids[key], seconds[key] = [], []
            try:
                for _ in range(p.warmup):
                    h.run_job(client, protocol, params, backend)
                for _ in range(p.repeats):
                    h.settle()
                    job = h.run_job(client, protocol, params, backend)
                    ids[key].append(job.job_id)
                    seconds[key].append(job.seconds)
            except h.JobFailed as exc:
                errors[key] = h.failure(exc)
                log(f"{tag} {backend} {analysis} failed: {errors[key]}")
    return ids, seconds, errors


def rows_of(
    k: int,
    n: int,
    ids: dict[Key, list[str]],
    seconds: dict[Key, list[float]],
    errors: dict[Key, str],
    steps: Any,
    up: float,
    tag: str,
) -> list[dict[str, Any]]:
    """One row per (analysis, backend) at k hospitals x n records."""
    rows = []
    for (analysis, backend), times in seconds.items():
        figures = timings.step_figures(ids[(analysis, backend)], steps, count_digits=0)
        sent = figures["bytes_sent_per_party"]
        rows.append(
            {
                "analysis": analysis,
                "backend": backend,
                "hospitals": k,
                "records_per_hospital": n,
                "seconds": statistics.median(times) if times else None,
                "all_seconds": times,
                "hops": figures["hops"],
                "messages_per_party": figures["messages_per_party"],
                "kib": None if sent is None else sent / 1024.0,
                "local_up_seconds": round(up, 2),
                "error": errors.get((analysis, backend)),
            }
        )
        log(f"{tag} {n:,} {backend} {analysis}: {rows[-1]['seconds']} s, {figures['hops']} hops")
    return rows


def series(rows: list[dict[str, Any]], sweep: str, p: Plan) -> dict[tuple[str, str], list[Any]]:
    """The rows of one sweep ("hospitals": records fixed at base; "records": 3
    hospitals), by (analysis, backend), in x order."""
    out: dict[tuple[str, str], list[Any]] = {}
    for r in rows:
        if sweep == "hospitals" and r["records_per_hospital"] != p.base_records:
            continue
        if sweep == "records" and r["hospitals"] != 3:
            continue
        out.setdefault((r["analysis"], r["backend"]), []).append(r)
    x = "hospitals" if sweep == "hospitals" else "records_per_hospital"
    return {key: sorted(v, key=lambda r: r[x]) for key, v in out.items()}


def slopes(rows: list[dict[str, Any]], p: Plan) -> list[dict[str, Any]]:
    out = []
    for sweep, x in (("hospitals", "hospitals"), ("records", "records_per_hospital")):
        for (analysis, backend), pts in series(rows, sweep, p).items():
            xs = [r[x] for r in pts]
            entry = {"sweep": sweep, "analysis": analysis, "backend": backend, "points": len(xs)}
            for metric, _ in METRICS:
                entry[f"slope_{metric}"] = loglog_slope(xs, [r[metric] for r in pts])
            out.append(entry)
    return out


def run(context: Context) -> Section:
    p = plan(context.size)
    seed = context.seed + 301
    rows: list[dict[str, Any]] = []
    by_hospitals: dict[int, list[int]] = {}
    for k, n in points(p):
        by_hospitals.setdefault(k, []).append(n)
    for k, sizes in sorted(by_hospitals.items()):
        rows += measure(k, sizes, p, seed)
    fitted = slopes(rows, p)
    figures = [
        Figure(
            plot(context.out, rows, p, "hospitals", fitted),
            f"Time, hops and KiB sent per party against the number of hospitals "
            f"({p.base_records:,} records per hospital), log-log; slope in the legend.",
        ),
        Figure(
            plot(context.out, rows, p, "records", fitted),
            "Time, hops and KiB sent per party against records per hospital "
            "(3 hospitals), log-log; slope in the legend.",
        ),
    ]
    measured = keyed_table(
        "Measured points",
        [
            ("analysis", "analysis"),
            ("backend", "backend"),
            ("hospitals", "hospitals"),
            ("records / hospital", "records_per_hospital"),
            ("MPC s", "seconds"),
            ("hops", "hops"),
            ("messages / party", "messages_per_party"),
            ("KiB sent / party", "kib"),
        ],
        [r for r in rows if r["error"] is None],
        "MPC s: median end-to-end job time at the analyst after warm-up; hops, messages "
        "and KiB: the parties' logged figures (most any hospital sent).",
    )
    slope_table = keyed_table(
        "Fitted log-log slopes (y ~ x^slope)",
        [
            ("sweep", "sweep"),
            ("analysis", "analysis"),
            ("backend", "backend"),
            ("points", "points"),
            ("time slope", "slope_seconds"),
            ("hops slope", "slope_hops"),
            ("KiB slope", "slope_kib"),
        ],
        fitted,
        "Least-squares slope of log(y) on log(x) over the points of the sweep (with 2 "
        "points it is the line through them). Sweep hospitals: records per hospital fixed "
        f"at {p.base_records:,}; sweep records: 3 hospitals. On this shared 2-core machine "
        "the slope of time in hospitals includes CPU sharing among the hospital processes; "
        "the slopes of hops and bytes are what a real network would see.",
    )
    failed = [
        f"{r['analysis']} ({r['backend']}, {r['hospitals']} x {r['records_per_hospital']:,}): "
        f"{r['error']}"
        for r in rows
        if r["error"]
    ]
    text = (
        f"{__doc__.strip()}\n\nPoints: hospitals {', '.join(map(str, p.parties))} at "
        f"{p.base_records:,} records each; records per hospital "
        f"{', '.join(f'{n:,}' for n in p.records)} at 3 hospitals; backends "
        f"{', '.join(p.backends)}; {p.warmup} warm-up and {p.repeats} timed job(s) per "
        f"cell. Count: codes E11; logistic: {', '.join(FEATURES)} -> {OUTCOME}, mode "
        "iterates."
    )
    if failed:
        text += "\n\nJobs that failed (left out): " + "; ".join(failed)
    raw = {
        "seeds": {"data": seed},
        "plan": {
            "hospitals": list(p.parties),
            "records": list(p.records),
            "base_records": p.base_records,
            "backends": list(p.backends),
            "warmup": p.warmup,
            "repeats": p.repeats,
        },
        "rows": rows,
        "slopes": fitted,
    }
    return Section(TITLE, text, [measured, slope_table], figures, raw)


def plot(
    out: Path, rows: list[dict[str, Any]], p: Plan, sweep: str, fitted: list[dict[str, Any]]
) -> str:
    from matplotlib.ticker import NullFormatter

    plt = pyplot()
    x = "hospitals" if sweep == "hospitals" else "records_per_hospital"
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2))
    slope = {(s["analysis"], s["backend"]): s for s in fitted if s["sweep"] == sweep}
    for (analysis, backend), pts in series(rows, sweep, p).items():
        ok = [r for r in pts if r["error"] is None]
        for ax, (metric, label) in zip(axes, METRICS, strict=True):
            b = slope[(analysis, backend)][f"slope_{metric}"]
            text = "-" if b is None else f"{b:.2f}"
            ax.plot(
                [r[x] for r in ok],
                [r[metric] for r in ok],
                marker="o",
                label=f"{analysis}, {backend} (slope {text})",
            )
            ax.set_ylabel(label)
    for ax, (_, label) in zip(axes, METRICS, strict=True):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("hospitals" if sweep == "hospitals" else "records per hospital")
        ax.set_title(label)
        ax.legend(fontsize=7)
        label_log_axes(ax)
        ticks = list(p.parties) if sweep == "hospitals" else list(p.records)
        ax.set_xticks(ticks, [f"{k:,}" if k < 10**5 else f"10^{round(math.log10(k))}"
                              for k in ticks])  # fmt: skip
        ax.xaxis.set_minor_formatter(NullFormatter())
    what = f"{p.base_records:,} records per hospital" if sweep == "hospitals" else "3 hospitals"
    fig.suptitle(f"Scaling in {'hospitals' if sweep == 'hospitals' else 'records'} ({what})")
    return save(fig, out, f"scalability_{sweep}.png")
