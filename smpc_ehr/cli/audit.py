"""`smpc-ehr audit verify|show`: check parties' audit logs, and read them as a table.

    smpc-ehr audit verify (--config PARTY.toml | --state DIR)
    smpc-ehr audit show (--config PARTY.toml | --state DIR) [--party ID] [--json]

`verify --config` checks one party's chain and the signatures of every head it holds
of others, and that those of one party agree at each seq (else: a fork);
`verify --state` checks every party of a local federation and also each party's log
against the heads the others hold of it (truncation, rewriting, forks across
holders). Both print every problem, the first broken entry first, and exit 1 if there is one.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smpc_ehr.audit import trail
from smpc_ehr.audit.chain import Entry
from smpc_ehr.audit.heads import HeadStore, HeldHead, held_by_others
from smpc_ehr.audit.verify import Problem, forks, head_problem, read_chain, verify_log
from smpc_ehr.cli.commands import DEFAULT_STATE
from smpc_ehr.config.party import PartyConfig, load_party_config
from smpc_ehr.errors import ConfigError


def register(sub: Any) -> None:
    """Add `audit verify` and `audit show` to the CLI's subcommands."""
    audit = sub.add_parser("audit", help="check and read the parties' audit logs")
    actions = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    verify = actions.add_parser(
        "verify", help="check audit chains and signed heads; name the first broken entry"
    )
    _where(verify)
    verify.set_defaults(handler=verify_command)
    show = actions.add_parser("show", help="the audit log as a table, for a privacy officer")
    _where(show)
    show.add_argument("--party", help="only this party (with --state)")
    show.add_argument("--json", action="store_true", help="print the rows as JSON")
    show.set_defaults(handler=show_command)


def _where(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--config", help="one party's config TOML")
    where.add_argument(
        "--state", help=f"every party of a local federation (default {DEFAULT_STATE})"
    )


def _configs(args: argparse.Namespace) -> list[PartyConfig]:
    from smpc_ehr.local.federation import party_configs

    if args.config:
        return [load_party_config(args.config, check_files=False)]
    paths = party_configs(Path(args.state or DEFAULT_STATE))
    configs = [load_party_config(p, check_files=False) for p in paths]
    party = getattr(args, "party", None)
    if party:
        configs = [c for c in configs if c.id == party]
        if not configs:
            raise ConfigError(f"no party {party!r} in the local federation")
    return configs


def _ca(config: PartyConfig) -> bytes:
    try:
        return config.roster.ca_cert.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read CA certificate {config.roster.ca_cert}: {exc}") from None


def verify_command(args: argparse.Namespace) -> int:
    configs = _configs(args)
    stores = {c.id: HeadStore(c.audit_heads_folder) for c in configs}
    problems: list[Problem] = []
    for config in configs:
        ca = _ca(config)
        if args.config:
            held: list[HeldHead] = []
        else:
            held = held_by_others(stores, config.id)
        entries, found = verify_log(config.audit_log_path, config.id, held, ca)
        if args.config:  # the heads this party holds of others: their signatures
            found += _check_held(config, stores[config.id], ca)
        problems += found
        status = "BROKEN" if found else "ok"
        against = "" if args.config else f"; checked against {len(held)} heads others hold of it"
        where = config.audit_log_path
        print(f"{config.id}: {status}: {len(entries)} valid entries in {where}{against}")
    if problems:
        print(f"first broken entry: {problems[0]}", file=sys.stderr)
        for problem in problems[1:]:
            print(f"also: {problem}", file=sys.stderr)
        return 1
    return 0


def _check_held(config: PartyConfig, store: HeadStore, ca: bytes) -> list[Problem]:
    """Problems with the heads `config`'s party holds of others (their signatures)."""
    problems = []
    count = 0
    for party, rows in store.held(config.id).items():
        valid = []
        for row in rows:
            count += 1
            invalid = head_problem(row, party, ca)
            if invalid is not None:
                problems.append(Problem(row.path, row.line, None, f"held head: {invalid}"))
            else:
                valid.append(row)
        problems += forks(party, valid)
    print(f"{config.id}: holds {count} signed heads of other parties, checked")
    return problems


@dataclass
class Row:
    """One line of `audit show`: a job (all its entries) or another event."""

    party: str
    time: str
    job: str = ""
    analyst: str = ""
    template: str = ""
    parameters: str = ""
    outcome: str = ""


def rows_of(party: str, entries: list[Entry]) -> list[Row]:
    """Fold a log's entries into rows: one per job, one per other event."""
    rows: list[Row] = []
    jobs: dict[str, Row] = {}
    for entry in entries:
        f = entry.fields
        job = str(f.get("job", ""))
        if entry.kind == trail.JOB_RECEIVED:
            params = f.get("params", {})
            row = Row(
                party,
                entry.time,
                job,
                str(f.get("analyst", "")),
                str(f.get("template_hash", ""))[:12],
                ", ".join(f"{k}={v}" for k, v in sorted(params.items())),
                "received",
            )
            jobs[job] = row
            rows.append(row)
            continue
        found = jobs.get(job) if job else None
        if found is None:
            rows.append(Row(party, entry.time, job, outcome=_event(entry)))
            continue
        row = found
        if entry.kind == trail.JOB_ACCEPTED:
            row.template = str(f.get("template", row.template))
            row.outcome = "accepted"
        elif entry.kind == trail.JOB_REFUSED:
            row.outcome = f"refused: {f.get('reason', '')}"
        elif entry.kind == trail.OUTPUTS_SENT:
            row.outcome = f"outputs sent to {f.get('to', '?')}" + _budget(row.outcome)
        elif entry.kind == trail.JOB_FAILED:
            row.outcome = f"failed: {f.get('reason', '')}" + _budget(row.outcome)
        elif entry.kind == trail.JOB_DROPPED:
            row.outcome = f"dropped: {f.get('reason', '')}"
        elif entry.kind == trail.BUDGET_COMMITTED:
            row.outcome += " [budget spent]"
        elif entry.kind == trail.BUDGET_RELEASED:
            row.outcome += " [budget given back]"
    return rows


def _budget(outcome: str) -> str:
    return " [budget spent]" if "[budget spent]" in outcome else ""


def _event(entry: Entry) -> str:
    f = entry.fields
    if entry.kind == trail.RPC_REFUSED:
        return f"refused {f.get('method')} from {f.get('caller')}: {f.get('reason')}"
    if entry.kind == trail.AUDIT_FORK:
        return (
            f"FORK: {f.get('sender')} signed two different audit heads for seq {f.get('seq')}: "
            f"{f.get('held_hash')} and {f.get('new_hash')}"
        )
    if entry.kind == trail.AUDIT_ROLLBACK:
        back = f"from seq {f.get('last_seq')} to {f.get('seq')}"
        return f"audit head of {f.get('sender')} went back {back}"
    details = ", ".join(f"{k}={v}" for k, v in sorted(f.items()))
    return f"{entry.kind.replace('_', ' ')}" + (f" ({details})" if details else "")


def show_command(args: argparse.Namespace) -> int:
    rows: list[Row] = []
    for config in _configs(args):
        entries, problem = read_chain(config.audit_log_path)
        if problem is not None:
            print(
                f"warning: {problem}; only the entries before it are shown "
                "(run `smpc-ehr audit verify`)",
                file=sys.stderr,
            )
        rows += rows_of(config.id, entries)
    if args.json:
        print(json.dumps([row.__dict__ for row in rows], indent=2))
        return 0
    from smpc_ehr.analyses.common.text import table  # loads every analysis: only here

    names = [f.name for f in dataclasses.fields(Row)]
    print(table(names, [[getattr(row, n) for n in names] for row in rows]))
    return 0
