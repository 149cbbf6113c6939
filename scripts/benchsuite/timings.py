"""What a benchmark makes of its timings: medians and percentiles of samples, the
parties' own logged steps (local and MPC step, messages, bytes) and data loads, and how
the federation came up."""

from __future__ import annotations

import math
import os
import re
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchsuite.harness import (
    Jobs,
    Pair,
    RunningFederation,
    Samples,
    alternate,
    analyst,
    local_federation,
)


@dataclass(frozen=True)
class Summary:
    """Median and 90th percentile of a sample of durations, in milliseconds."""

    n: int
    median_ms: float
    p90_ms: float
    min_ms: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Summary:
        ms = sorted(s * 1000.0 for s in seconds)
        if not ms:
            raise ValueError("no samples")
        return cls(len(ms), statistics.median(ms), percentile(ms, 90.0), ms[0])

    def as_dict(self) -> dict[str, float | int]:
        return {
            "n": self.n,
            "median_ms": round(self.median_ms, 3),
            "p90_ms": round(self.p90_ms, 3),
            "min_ms": round(self.min_ms, 3),
        }


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The q-th percentile with linear interpolation between closest ranks (numpy's default)."""
    if len(sorted_values) == 1:
        return float(sorted_values[0])
    pos = (len(sorted_values) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return float(sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo))


def median(values: Sequence[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def rounded(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000.0


def summary(seconds: Sequence[float]) -> dict[str, float | int] | None:
    return Summary.of(seconds).as_dict() if seconds else None


# --- the federation and the parties' own timings ---------------------------------------


def setup_figures(
    fed: RunningFederation, generate_seconds: float | None, **loads: float
) -> dict[str, Any]:
    """How the federation came up: data generation, `local up`, the parties' data load,
    the baseline's load (`loads`, seconds) and each process's memory."""
    return {
        "generate_seconds": None if generate_seconds is None else round(generate_seconds, 2),
        "local_up_seconds": round(fed.up_seconds, 2),
        "party_load_seconds": party_load_seconds(fed),
        **{name: round(value, 2) for name, value in loads.items()},
        "rss_mb_after_up": fed.rss_mb(),
    }


def timed_pairs(
    data: Path,
    tag: str,
    pairs: Callable[[Any], Sequence[Pair]],
    warmup: int,
    repeats: int,
    generate_seconds: float | None,
    **loads: float,
) -> tuple[dict[str, Any], dict[str, PartySteps]]:
    """A federation on `data` that times the pairs its analyst client gives
    (harness.alternate): how it came up (`setup_figures`) with each process's memory
    after the jobs, and the parties' logged steps."""
    with local_federation(data, tag) as fed:
        setup = setup_figures(fed, generate_seconds, **loads)
        with analyst(fed) as client:
            alternate(pairs(client), warmup, repeats, tag)
        return setup, after_jobs(fed, setup, load=False)


def before_jobs(fed: RunningFederation) -> dict[str, Any]:
    """Setup figures taken just before the jobs: each process's memory, the machine's load."""
    return {"rss_mb_after_up": fed.rss_mb(), "load_average_before_jobs": load_average()}


def after_jobs(
    fed: RunningFederation, setup: dict[str, Any], load: bool = True
) -> dict[str, PartySteps]:
    """Into `setup`: each process's memory after the jobs and (`load`) the machine's load;
    returned: the parties' logged steps of every job."""
    setup["rss_mb_after_jobs"] = fed.rss_mb()
    if load:
        setup["load_average_after_jobs"] = load_average()
    return party_steps(fed)


def load_average() -> list[float]:
    """The machine's 1, 5 and 15 minute load averages (other work skews the timings)."""
    return [round(v, 2) for v in os.getloadavg()]


_LOADED = re.compile(r"loaded \d+ patients from .* in ([0-9.]+) s")


def party_load_seconds(fed: RunningFederation) -> float | None:
    """The longest data load a party logged at start-up (seconds), if it logged one."""
    times = []
    for log_file in (fed.state_dir / "logs").glob("*.log"):
        match = _LOADED.search(log_file.read_text(errors="replace"))
        if match:
            times.append(float(match.group(1)))
    return max(times) if times else None


_JOB_LINE = re.compile(
    r"job (\S+): local step ([0-9.]+) ms, MPC ([0-9.]+) ms, (?:(\d+) hops, )?(\d+) messages, "
    r"(\d+) bytes sent"
)


@dataclass(frozen=True)
class PartySteps:
    """One job as its parties logged it (smpc_ehr/party/jobs.py): the slowest party's
    steps, the most any party sent; hops: the job's sequential message rounds (the
    deepest message any party sent; 0 in logs from before hops were counted)."""

    local_ms: float
    mpc_ms: float
    messages: int
    bytes_sent: int
    parties: int
    hops: int = 0


def party_steps(fed: RunningFederation) -> dict[str, PartySteps]:
    """Every job the parties logged, by job id (max over the parties that logged it)."""
    per_job: dict[str, list[tuple[float, float, int, int, int]]] = {}
    for ident in fed.pids:
        log_file = fed.state_dir / "logs" / f"{ident}.log"
        if not log_file.exists():
            continue
        for match in _JOB_LINE.finditer(log_file.read_text(errors="replace")):
            job_id, local_ms, mpc_ms, hops, messages, sent = match.groups()
            per_job.setdefault(job_id, []).append(
                (float(local_ms), float(mpc_ms), int(messages), int(sent), int(hops or 0))
            )
    return {
        job: PartySteps(
            max(e[0] for e in entries),
            max(e[1] for e in entries),
            max(e[2] for e in entries),
            max(e[3] for e in entries),
            len(entries),
            max(e[4] for e in entries),
        )
        for job, entries in per_job.items()
    }


def step_figures(
    job_ids: Sequence[str | None], steps: dict[str, PartySteps], count_digits: int = 1
) -> dict[str, Any]:
    """Medians of the parties' logged steps over some jobs: local and MPC step (ms),
    messages and bytes sent per party."""
    logged = [steps[j] for j in job_ids if j is not None and j in steps]
    return {
        "local_step_ms": rounded(median([p.local_ms for p in logged])),
        "mpc_step_ms": rounded(median([p.mpc_ms for p in logged])),
        "hops": rounded(median([p.hops for p in logged]), 0),
        "messages_per_party": rounded(median([p.messages for p in logged]), count_digits),
        "bytes_sent_per_party": rounded(median([p.bytes_sent for p in logged]), count_digits),
        "jobs_with_steps": len(logged),
    }


def note_figures(jobs: Jobs) -> dict[str, Any]:
    """Medians over some jobs of their iterations and, by their progress notes, the time
    to the first step, between two steps and after the last one (seconds)."""
    return {
        "iterations": median(jobs.iterations),
        "to_first_step_s": median(jobs.first_step),
        "later_step_s": median(jobs.later_step),
        "after_last_step_s": median(jobs.after_last_step),
    }


def pair_figures(s: Samples, baseline: str, steps: dict[str, PartySteps]) -> dict[str, Any]:
    """A pair's timings: MPC end to end and at the coordinator, its `baseline`, the
    ratio of their medians, and the parties' logged steps."""
    mpc, plain = Summary.of(s.jobs.seconds), Summary.of(s.baseline)
    return {
        "mpc": mpc.as_dict(),
        "mpc_coordinator": Summary.of(s.jobs.coordinator_seconds).as_dict(),
        baseline: plain.as_dict(),
        "ratio": round(mpc.median_ms / plain.median_ms, 3),
        **step_figures(s.jobs.job_ids, steps),
    }


def logged_by_every_party(
    job_ids: Sequence[str | None], steps: dict[str, PartySteps], parties: int
) -> int:
    """How many of some jobs every one of the `parties` logged a step line for."""
    return sum(steps[j].parties >= parties for j in job_ids if j is not None and j in steps)


def unlogged(
    what: str, job_ids: Sequence[str], steps: dict[str, PartySteps], parties: int
) -> list[str]:
    """A problem if some job lacks a step line from one of the parties."""
    missing = [j for j in job_ids if steps.get(j) is None or steps[j].parties < parties]
    if not missing:
        return []
    return [f"{what}: {len(missing)} job(s) without a step line from every party"]
