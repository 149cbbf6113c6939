"""The `smpc-ehr` command: one subcommand per role and task.

    smpc-ehr certs init --roster ROSTER --out DIR          (local federations: every key)
    smpc-ehr certs ca --roster ROSTER --out DIR            (the CA alone: members make their keys)
    smpc-ehr certs request --id ID --role ROLE --roster ROSTER --out DIR  (member's own key)
    smpc-ehr certs sign --ca CA --ca-key KEY --roster ROSTER CSR [--days N] [--out CERT]
    smpc-ehr certs show FILE
    smpc-ehr roster sign --ca-key KEY ROSTER   (ROSTER.sig; members reload on SIGHUP)
    smpc-ehr synth --roster ROSTER --patients N --seed S --out DIR [--overlap SHARE]
    smpc-ehr linkage-key new --out FILE      (the hospitals' key for deduplicated counts)
    smpc-ehr party --config FILE            (one per hospital)
    smpc-ehr coordinator --config FILE
    smpc-ehr dealer --config FILE           (CrypTen backend: correlated randomness)
    smpc-ehr protocol show PROTOCOL.toml     (canonical hash, parameters, leakage)
    smpc-ehr run PROTOCOL.toml [--set name=value ...] [--parties A,B,C] [--json]
                 [--csv FILE] [--plot FILE.png] [--quiet]
                 (--state DIR | --config FILE)
    smpc-ehr local up --data DIR [--state DIR] [--require-dp] [--epsilon-budget E]
                      [--allow-partial]
    smpc-ehr local down [--state DIR]
    smpc-ehr budget (--state DIR | --config PARTY.toml)   (privacy budget spent, remaining)
    smpc-ehr jobs list|show [ID] [--json] (--state DIR | --config FILE)  (your job history)
    smpc-ehr config check FILE | health --config FILE | templates --config ANALYST.toml
    smpc-ehr audit verify|show (--state DIR | --config PARTY.toml)   (audit logs)

Errors a user can fix are printed as one line naming what is wrong (exit code 2);
a job that ran and failed exits with 1; output whose reader went away (`| head -1`)
ends quietly with 141.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from smpc_ehr.backend_names import BACKEND_NAMES
from smpc_ehr.cli import audit, commands, export_options, jobs, linkage, ops, pki
from smpc_ehr.errors import SmpcEhrError
from smpc_ehr.policy.approval import DEFAULT_MIN_CELL_COUNT, job_deadline, min_cell_count_problem
from smpc_ehr.policy.privacy import DEFAULT_DELTA

EXIT_BROKEN_PIPE = 141
"""Exit status when stdout's reader went away (as a shell reports death by SIGPIPE)."""


def _deadline(text: str) -> float:
    """--deadline: a positive, finite number of seconds (refused before anything is sent)."""
    try:
        return job_deadline(float(text))
    except (ValueError, SmpcEhrError) as exc:
        message = str(exc) if isinstance(exc, SmpcEhrError) else f"not a number: {text!r}"
        raise argparse.ArgumentTypeError(message) from None


def _party_list(text: str) -> tuple[str, ...]:
    """--parties: comma-separated party ids, at least one (the coordinator checks them)."""
    ids = tuple(p.strip() for p in text.split(","))
    if not all(ids):
        raise argparse.ArgumentTypeError(f"empty party id in {text!r}")
    return ids


def _min_cell_count(text: str) -> int:
    """--min-cell-count: an integer the MPC backends can compare counts with."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    problem = min_cell_count_problem(value)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return value


def _epsilon_budget(text: str) -> float:
    """--epsilon-budget: a positive, finite epsilon (at the policy's delta)."""
    return ops.positive_number(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="smpc-ehr",
        description="Secure multi-party computation over hospitals' health records.",
    )
    ops.add_version(parser)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    certs = sub.add_parser("certs", help="federation certificates")
    certs_sub = certs.add_subparsers(dest="certs_command", required=True, metavar="ACTION")
    init = certs_sub.add_parser("init", help="make a CA and a key+certificate per identity")
    init.add_argument("--roster", required=True, help="roster TOML")
    init.add_argument("--out", required=True, help="folder for ca.pem, <id>.pem, <id>.key")
    init.add_argument("--force", action="store_true", help="overwrite existing keys")
    init.set_defaults(handler=commands.certs_init)
    pki.register_certs(certs_sub)
    pki.register_roster(sub)

    synth = sub.add_parser("synth", help="write synthetic EHR data, one folder per party")
    who = synth.add_mutually_exclusive_group(required=True)
    who.add_argument("--roster", help="roster TOML (one folder per party in it)")
    who.add_argument("--parties", help="comma-separated party ids, instead of a roster")
    synth.add_argument("--patients", type=int, required=True, help="mean patients per party")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--out", required=True)
    synth.add_argument(
        "--format",
        choices=("csv", "parquet", "omop", "fhir", "duckdb"),
        default="csv",
        help="omop: an OMOP CDM SQLite file, fhir: FHIR R4 NDJSON, each with a source.toml "
        "mapping the features and readmit_30d; duckdb: the CSV tables in a DuckDB file",
    )
    synth.add_argument("--equal-sizes", action="store_true", help="every party gets N patients")
    synth.add_argument(
        "--overlap",
        type=float,
        default=None,
        help="give patients link ids and show this share (0-1) of rare-disease patients "
        "at one or two other hospitals too",
    )
    synth.set_defaults(handler=commands.synth)

    for role in ("party", "coordinator", "dealer"):
        proc = sub.add_parser(role, help=f"run the {role} process")
        proc.add_argument("--config", required=True, help=f"{role} config TOML")
        proc.set_defaults(handler=commands.serve)

    protocol = sub.add_parser("protocol", help="inspect study protocol templates")
    protocol_sub = protocol.add_subparsers(dest="protocol_command", required=True, metavar="ACTION")
    show = protocol_sub.add_parser(
        "show", help="a template's canonical hash (what parties approve), parameters and leakage"
    )
    show.add_argument("file", help="protocol template TOML")
    show.set_defaults(handler=commands.protocol_show)

    run = sub.add_parser("run", help="run a study protocol and print its result")
    run.add_argument("protocol", help="protocol template TOML")
    run.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="parameter value (lists comma-separated); repeatable",
    )
    run.add_argument(
        "--backend",
        choices=BACKEND_NAMES,
        help="MPC backend: mpyc (3+ hospitals, no dealer) or crypten (2+ hospitals, needs "
        "the roster's dealer); default: the template's",
    )
    run.add_argument(
        "--deadline",
        type=_deadline,
        help="job deadline in seconds (positive; at most the coordinator's limit)",
    )
    run.add_argument(
        "--parties",
        type=_party_list,
        default=(),
        metavar="A,B,C",
        help="the hospitals taking part, comma-separated (default: every party of the "
        "roster); an exact job over some of them runs only where every one allows it "
        "(allow_partial_jobs)",
    )
    run.add_argument("--json", action="store_true", help="print the result as JSON")
    export_options.register(run)
    where = run.add_mutually_exclusive_group()
    where.add_argument(
        "--state", help=f"local federation state folder (default {commands.DEFAULT_STATE})"
    )
    where.add_argument("--config", help="analyst config TOML (a real federation)")
    run.set_defaults(handler=commands.run)

    local = sub.add_parser("local", help="a whole federation on this machine")
    local_sub = local.add_subparsers(dest="local_command", required=True, metavar="ACTION")
    lup = local_sub.add_parser("up", help="start a coordinator and one party per data folder")
    lup.add_argument("--data", required=True, help="folder with one subfolder per party")
    lup.add_argument("--state", default=commands.DEFAULT_STATE)
    lup.add_argument("--protocols", default="protocols", help="templates every party approves")
    lup.add_argument(
        "--approve",
        action="append",
        default=[],
        metavar="FILE",
        help="another template every party approves; repeatable",
    )
    lup.add_argument("--min-cell-count", type=_min_cell_count, default=DEFAULT_MIN_CELL_COUNT)
    lup.add_argument("--timeout", type=float, default=60.0)
    lup.add_argument(
        "--require-dp",
        action="store_true",
        help="every party refuses exact runs: a job must give the template's epsilon",
    )
    lup.add_argument(
        "--epsilon-budget",
        type=_epsilon_budget,
        metavar="E",
        help="every party's privacy budget per analyst, as epsilon at delta = "
        f"{DEFAULT_DELTA:g} (default: no budget)",
    )
    lup.add_argument(
        "--allow-partial",
        action="store_true",
        help="every party runs exact jobs over a subset of the hospitals (allow_partial_jobs: "
        "the difference of two exact results can reveal one hospital's numbers)",
    )
    lup.set_defaults(handler=commands.local_up)
    ldown = local_sub.add_parser("down", help="stop the local federation")
    ldown.add_argument("--state", default=commands.DEFAULT_STATE)
    ldown.set_defaults(handler=commands.local_down)

    budget = sub.add_parser(
        "budget", help="privacy budget spent and remaining, per analyst and in total"
    )
    ledger = budget.add_mutually_exclusive_group()
    ledger.add_argument(
        "--state",
        help=f"every party of a local federation (default {commands.DEFAULT_STATE})",
    )
    ledger.add_argument("--config", help="one party's config TOML (its state folder)")
    budget.set_defaults(handler=commands.budget)
    jobs.register(sub)
    ops.register(sub)
    audit.register(sub)
    linkage.register(sub)
    return parser


def _discard_stdout() -> None:
    """Point stdout at devnull once its reader has gone, so that the interpreter's final
    flush does not raise BrokenPipeError again (Python docs, signal: "Note on SIGPIPE")."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout replaced by an object without a descriptor
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `smpc-ehr` console script."""
    try:
        args = build_parser().parse_args(argv)
        code = int(args.handler(args) or 0)
        sys.stdout.flush()  # a reader that left early (`| head`) shows here, not at exit
        return code
    except BrokenPipeError:
        _discard_stdout()
        return EXIT_BROKEN_PIPE
    except commands.JobFailed as exc:
        print(f"job failed: {exc}", file=sys.stderr)
        return 1
    except SmpcEhrError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
