"""Overhead per analysis: an MPC job's time, hops, messages and bytes per party against
the same computation in plaintext on the pooled rows, at 0 ms and at 10 ms one-way
delay between every pair of members.

Data: the benchmarks' synthetic federation (benchsuite/data.py `stats_data`: 3
hospitals, cached under .bench-data/). Jobs: the count (E11), a summary of four
variables, logistic regression (10 variables, outcome readmit_30d, mode iterates) and
k-means (8 variables, k = 4, the initial centroids of `bench.py kmeans`, 10 Lloyd
steps on both sides), the jobs of
`bench.py wan` plus the summary. Plaintext: pandas/numpy/scikit-learn on all hospitals'
rows pooled in one process, already in memory (the parties load theirs at `local up`
too). Hops (sequential message rounds), messages and bytes per party are the parties'
own logged figures of each job (the most any party sent). The 10 ms column runs every
member in its own Linux network namespace behind a relay that delays every byte by
10 ms each way (benchsuite/netlab.py, relay.py).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from benchsuite import harness as h
from benchsuite import timings
from benchsuite.data import VARIABLES, load_pooled, stats_data
from benchsuite.harness import PROTOCOLS, log, party_ids
from benchsuite.options import DEFAULT_DATA_ROOT

from evaluation.common import best_of, by_size, pyplot, save
from evaluation.section import Context, Figure, Section, Table

TITLE = "Overhead: MPC jobs against the plaintext pooled computation"
DELAY_MS = 10.0
SUMMARY_VARIABLES = ("bmi", "sbp", "hba1c", "ldl")
KMEANS_STEPS = 10
"""Lloyd steps of the k-means job and of its plaintext twin (tol 0: both run them all
unless no patient changes cluster), so that both do the same work."""


@dataclass(frozen=True)
class Plan:
    patients: int
    backends: tuple[str, ...]
    repeats: int
    warmup: int
    delay_backends: tuple[str, ...]
    """The backends timed at DELAY_MS (none: the column is left out)."""


def plan(size: str) -> Plan:
    return by_size(
        size,  # type: ignore[arg-type]
        Plan(300, ("mpyc",), 1, 0, ()),
        Plan(2000, ("mpyc", "crypten"), 1, 1, ("mpyc",)),
        Plan(20000, ("mpyc", "crypten"), 3, 1, ("mpyc", "crypten")),
    )


@dataclass(frozen=True)
class Spec:
    """One analysis: its MPC job and its plaintext twin."""

    name: str
    protocol: Path
    params: dict[str, str]
    plaintext: Callable[[], Any]


def specs(data: Path) -> list[Spec]:
    """The four analyses (the jobs of `bench.py wan` and a summary) and their plaintext."""
    from benchsuite.clusters import pooled_rows, sklearn_kmeans
    from benchsuite.counts import Pooled as CountPooled
    from benchsuite.counts import Query
    from benchsuite.dp import pooled_rows as complete_cases
    from benchsuite.logreg_data import OUTCOME
    from benchsuite.models import sklearn_model
    from benchsuite.wan import job_specs

    folders = [data / ident for ident in party_ids(h.PARTIES)]
    wan = {s.name: s for s in job_specs(data)}
    counts, query = CountPooled.load(folders), Query("count E11", "E11")
    everything = load_pooled(folders)
    columns = [VARIABLES.index(v) for v in SUMMARY_VARIABLES]
    xy = complete_cases(data, (*VARIABLES, OUTCOME))
    model, _ = sklearn_model()
    clusters = pooled_rows(data)
    km = sklearn_kmeans(clusters, KMEANS_STEPS)

    def summary() -> Any:
        x = everything[:, columns]
        return np.nanmean(x, axis=0), np.nanvar(x, axis=0, ddof=1), (~np.isnan(x)).sum(axis=0)

    return [
        Spec("count", wan["count"].protocol, wan["count"].params, lambda: counts.run(query)),
        Spec(
            "summary",
            PROTOCOLS / "summary.toml",
            {"variables": ",".join(SUMMARY_VARIABLES)},
            summary,
        ),
        Spec(
            "logistic",
            wan["logistic"].protocol,
            wan["logistic"].params,
            lambda: model.fit(xy[:, :-1], xy[:, -1]),
        ),
        Spec(
            "k-means",
            wan["kmeans"].protocol,
            {**wan["kmeans"].params, "max_iter": str(KMEANS_STEPS), "tol": "0"},
            lambda: km.fit(clusters.z),
        ),
    ]


@dataclass
class Measured:
    """One analysis on one backend at one delay."""

    analysis: str
    backend: str
    delay_ms: float
    seconds: list[float] = field(default_factory=list)
    job_ids: list[str] = field(default_factory=list)
    steps: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def median(self) -> float | None:
        return statistics.median(self.seconds) if self.seconds else None


def run_jobs(
    fed: h.RunningFederation,
    all_specs: list[Spec],
    p: Plan,
    backends: tuple[str, ...],
    delay: float,
    tag: str,
) -> list[Measured]:
    """Each analysis on each backend: p.warmup warm-up jobs, then p.repeats timed ones;
    the parties' logged steps of the timed jobs."""
    out: list[Measured] = []
    with h.analyst(fed) as client:
        for backend in backends:
            for spec in all_specs:
                m = Measured(spec.name, backend, delay)
                try:
                    for _ in range(p.warmup):
                        h.run_job(client, spec.protocol, spec.params, backend)
                    for _ in range(p.repeats):
                        h.settle()
                        job = h.run_job(client, spec.protocol, spec.params, backend)
                        m.seconds.append(job.seconds)
                        m.job_ids.append(job.job_id)
                except h.JobFailed as exc:
                    m.error = h.failure(exc)
                log(f"{tag} {backend} {spec.name}: {m.median} s {m.error or ''}")
                out.append(m)
    steps = timings.party_steps(fed)
    for m in out:
        m.steps = timings.step_figures(m.job_ids, steps, count_digits=0)
    return out


def delayed(data: Path, all_specs: list[Spec], p: Plan) -> tuple[list[Measured], str]:
    """The jobs at DELAY_MS in network namespaces, or why they were not run."""
    from benchsuite.netlab import Link, why_not
    from benchsuite.wan import wan_federation

    if not p.delay_backends:
        return [], "not run at this size (time): run --size quick or full"
    reason = why_not()
    if reason:
        return [], f"network namespaces cannot be made here: {reason}"
    tag = f"[overhead {DELAY_MS:g} ms]"
    try:
        with wan_federation(data, Link(DELAY_MS), tag) as fed:
            return run_jobs(fed, all_specs, p, p.delay_backends, DELAY_MS, tag), ""
    except Exception as exc:  # the namespaces or the relay could not be set up
        return [], f"the namespaced federation could not be started: {h.failure(exc)}"


def run(context: Context) -> Section:
    p = plan(context.size)
    data_seed = context.seed + 201
    data, gen_seconds = stats_data(DEFAULT_DATA_ROOT, data_seed, p.patients)
    if gen_seconds is not None:
        log(f"[overhead] generated 3 x {p.patients:,} patients in {gen_seconds:.1f} s")
    all_specs = specs(data)
    plaintext = {s.name: best_of(s.plaintext) for s in all_specs}
    with h.local_federation(data, "[overhead 0 ms]") as fed:
        local = run_jobs(fed, all_specs, p, p.backends, 0.0, "[overhead 0 ms]")
    slow, skipped = delayed(data, all_specs, p)
    at = {(m.analysis, m.backend): m for m in slow}
    rows = []
    for m in local:
        d = at.get((m.analysis, m.backend))
        base = plaintext[m.analysis]
        row = {
            "analysis": m.analysis,
            "backend": m.backend,
            "mpc_seconds": m.median,
            "plaintext_seconds": base,
            "ratio": None if m.median is None else m.median / base,
            "hops": m.steps.get("hops"),
            "messages_per_party": m.steps.get("messages_per_party"),
            "bytes_per_party": m.steps.get("bytes_sent_per_party"),
            "kib_per_party": None
            if m.steps.get("bytes_sent_per_party") is None
            else m.steps["bytes_sent_per_party"] / 1024.0,
            "error": m.error,
            "seconds": m.seconds,
        }
        if d is not None:
            row |= {
                "mpc_seconds_delay": d.median,
                "ratio_delay": None if d.median is None else d.median / base,
                "hops_delay": d.steps.get("hops"),
                "hops_times_delay_seconds": None
                if d.steps.get("hops") is None
                else d.steps["hops"] * DELAY_MS / 1000.0,
                "seconds_delay": d.seconds,
                "error_delay": d.error,
            }
        rows.append(row)
    figure = plot(context.out, rows, bool(slow))
    raw = {
        "seeds": {"data": data_seed},
        "patients_per_hospital": p.patients,
        "hospitals": h.PARTIES,
        "repeats": p.repeats,
        "delay_ms": DELAY_MS if slow else None,
        "delay_skipped": skipped or None,
        "data": str(data),
        "rows": rows,
    }
    return Section(
        TITLE,
        text(p, skipped, rows),
        [table(rows, bool(slow), skipped, p)],
        [Figure(figure, CAPTION)],
        raw,
    )


def table(rows: list[dict[str, Any]], with_delay: bool, skipped: str, p: Plan) -> Table:
    headers = [
        "analysis",
        "backend",
        "MPC s (0 ms)",
        "plaintext s",
        "ratio (0 ms)",
        "hops",
        "messages / party",
        "KiB sent / party",
    ]
    if with_delay:
        headers += [f"MPC s ({DELAY_MS:g} ms)", f"ratio ({DELAY_MS:g} ms)", "hops x delay s"]
    body = []
    for r in rows:
        line = [
            r["analysis"],
            r["backend"],
            r["mpc_seconds"],
            r["plaintext_seconds"],
            r["ratio"],
            r["hops"],
            r["messages_per_party"],
            r["kib_per_party"],
        ]
        if with_delay:
            line += [
                r.get("mpc_seconds_delay"),
                r.get("ratio_delay"),
                r.get("hops_times_delay_seconds"),
            ]
        body.append(line)
    note = (
        "MPC s: median end-to-end job time at the analyst; plaintext s: the best of 3 "
        "single-threaded runs of the same computation on the pooled rows in one process; "
        "ratio = MPC s / plaintext s. Hops: the job's sequential message rounds among the "
        "hospitals; messages and KiB: the most any hospital sent in the job (the parties' "
        "logs). hops x delay: the least time the delay alone adds (one-way delay per "
        "round; the jobs' own RPCs to the coordinator add a few round trips)."
    )
    if not with_delay:
        note += f" The {DELAY_MS:g} ms column is missing: {skipped}."
    elif set(p.delay_backends) != set(p.backends):
        note += (
            f" At {DELAY_MS:g} ms only {', '.join(p.delay_backends)} was timed at this size "
            "(run time); '-' marks the backends that were not."
        )
    return Table("Overhead per analysis, 3 hospitals", headers, body, note)


CAPTION = (
    "Time per analysis: MPC job at 0 ms and at 10 ms one-way delay against the plaintext "
    "pooled computation (log scale)."
)


def plot(out: Path, rows: list[dict[str, Any]], with_delay: bool) -> str:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    labels = [f"{r['analysis']}\n{r['backend']}" for r in rows]
    x = np.arange(len(rows))
    series = [("plaintext pooled", "plaintext_seconds"), ("MPC, 0 ms", "mpc_seconds")]
    if with_delay:
        series.append((f"MPC, {DELAY_MS:g} ms one-way delay", "mpc_seconds_delay"))
    width = 0.8 / len(series)
    for i, (label, key) in enumerate(series):
        values = [r.get(key) or np.nan for r in rows]
        ax.bar(x + (i - (len(series) - 1) / 2) * width, values, width, label=label)
    ax.set_yscale("log")
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_ylabel("time per job (seconds, log scale)")
    ax.set_title("Overhead per analysis: MPC vs plaintext pooled, 3 hospitals")
    ax.legend(fontsize=8)
    return save(fig, out, "overhead_time.png")


def text(p: Plan, skipped: str, rows: list[dict[str, Any]]) -> str:
    out = (
        f"{__doc__.strip()}\n\nSize: 3 hospitals of about {p.patients:,} synthetic patients "
        f"each; backends {', '.join(p.backends)}; {p.warmup} warm-up and {p.repeats} "
        "timed job(s) per cell (without a warm-up, the first job of a backend pays its "
        "one-off set-up)."
    )
    failed = [f"{r['analysis']} ({r['backend']}): {r['error']}" for r in rows if r["error"]]
    if failed:
        out += "\n\nJobs that failed: " + "; ".join(failed)
    return out
