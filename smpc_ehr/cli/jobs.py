"""`smpc-ehr jobs list|show`: the analyst's own jobs from the coordinator's job history.

    smpc-ehr jobs list [--limit N] [--json] (--state DIR | --config ANALYST.toml)
    smpc-ehr jobs show ID [--json] (--state DIR | --config ANALYST.toml)

The coordinator answers from its history (which survives its restarts) and only with
the caller's jobs, the caller being the identity of the analyst's certificate.
"""

from __future__ import annotations

import argparse
import contextlib
import json
from collections.abc import Iterator
from typing import Any

from smpc_ehr.cli.commands import DEFAULT_STATE, _client
from smpc_ehr.client import JobFailed, JobInfo, JobResult
from smpc_ehr.client.jobs import utc_text
from smpc_ehr.coordinator.history import MAX_LIST as MAX_LIMIT
from smpc_ehr.errors import SmpcEhrError

DEFAULT_LIMIT = 20


def _limit(text: str) -> int:
    """--limit: 1..MAX_LIMIT jobs."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 1 <= value <= MAX_LIMIT:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_LIMIT}, got {value}")
    return value


def register(sub: Any) -> None:
    """Add `jobs list` and `jobs show` to the `smpc-ehr` subcommands `sub`."""
    jobs = sub.add_parser("jobs", help="your jobs from the coordinator's job history")
    actions = jobs.add_subparsers(dest="jobs_command", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="your jobs, newest first")
    listing.add_argument(
        "--limit",
        type=_limit,
        default=DEFAULT_LIMIT,
        metavar="N",
        help=f"at most N jobs (default {DEFAULT_LIMIT}, at most {MAX_LIMIT})",
    )
    listing.set_defaults(handler=jobs_list)
    show = actions.add_parser("show", help="one job's details and its result (while kept)")
    show.add_argument("job_id", metavar="ID", help="the job's id (from `jobs list`)")
    show.set_defaults(handler=jobs_show)
    for action in (listing, show):
        action.add_argument("--json", action="store_true", help="print JSON")
        where = action.add_mutually_exclusive_group()
        where.add_argument(
            "--state", help=f"local federation state folder (default {DEFAULT_STATE})"
        )
        where.add_argument("--config", help="analyst config TOML (a real federation)")


def _duration(job: JobInfo) -> str:
    return "-" if job.duration is None else f"{job.duration:.1f} s"


def list_table(jobs: list[JobInfo]) -> str:
    """The `jobs list` table: id, submitted (UTC), template, state, duration."""
    from smpc_ehr.analyses.common.text import table  # loads every analysis: only here

    header = ["ID", "SUBMITTED (UTC)", "TEMPLATE", "STATE", "DURATION"]
    rows = [[j.job_id, utc_text(j.submitted), j.protocol, j.state, _duration(j)] for j in jobs]
    return table(header, rows)


def show_text(job: JobInfo) -> str:
    """The `jobs show` text: the job's details, then its result as `run` prints it."""
    params = ", ".join(f"{k}={v}" for k, v in sorted(job.params.items())) or "(none)"
    lines = [
        f"job:       {job.job_id}",
        f"state:     {job.state}",
        f"template:  {job.protocol} (hash {job.protocol_hash})",
        f"params:    {params}",
        f"backend:   {job.backend}",
        f"parties:   {', '.join(job.parties)}",
        f"submitted: {utc_text(job.submitted)} UTC",
    ]
    for label, when in (("started", job.started), ("finished", job.finished)):
        if when is not None:
            lines.append(f"{label + ':':<10} {utc_text(when)} UTC")
    if job.error:
        lines.append(f"error:     {job.error}")
    if job.state == "expired":
        lines.append("result:    deleted (its retention passed)")
    if job.result is None:
        return "\n".join(lines)
    if job.result_expires is not None:
        lines.append(f"result:    kept until {utc_text(job.result_expires)} UTC")
    result = JobResult(
        job_id=job.job_id,
        protocol=job.protocol,
        protocol_hash=job.protocol_hash,
        backend=job.backend,
        parties=job.parties,
        result=job.result,
        elapsed_seconds=job.duration or 0.0,
    )
    from smpc_ehr.cli.render import render_result  # loads every analysis: only here

    return "\n".join(lines) + "\n\n" + render_result(result, job.analysis)


@contextlib.contextmanager
def _asked() -> Iterator[None]:
    """A refused question (no such job, coordinator unreachable) is an error to fix
    (exit 2), not a failed job."""
    try:
        yield
    except JobFailed as exc:
        raise SmpcEhrError(str(exc)) from exc


def jobs_list(args: argparse.Namespace) -> int:
    with _client(args) as client, _asked():
        jobs = client.jobs(args.limit)
    if args.json:
        print(json.dumps([j.as_dict(result=False) for j in jobs], indent=2))
    elif jobs:
        print(list_table(jobs))
    else:
        print("no jobs in the coordinator's history")
    return 0


def jobs_show(args: argparse.Namespace) -> int:
    with _client(args) as client, _asked():
        job = client.job(args.job_id)
    print(json.dumps(job.as_dict(), indent=2) if args.json else show_text(job))
    return 0
