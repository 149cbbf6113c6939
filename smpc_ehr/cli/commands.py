"""What each `smpc-ehr` subcommand does; argument parsing lives in `cli/__init__`."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from pathlib import Path
from typing import Any

from smpc_ehr.cli.progress import ProgressPrinter, progress_line
from smpc_ehr.client import Client, JobFailed
from smpc_ehr.compute_threads import limit_compute_threads
from smpc_ehr.config.analyst import LOCAL_ANALYST_CONFIG
from smpc_ehr.errors import ConfigError
from smpc_ehr.study.params import parse_set_options

__all__ = ["JobFailed", "progress_line"]

DEFAULT_STATE = ".smpc-ehr"
"""The local federation's state folder when --state is not given."""


def _setup_logging(level: str, who: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format=f"%(asctime)s {who} %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )


def certs_init(args: argparse.Namespace) -> int:
    from smpc_ehr.config.roster import load_roster
    from smpc_ehr.pki.certs import init_federation_pki

    roster = load_roster(args.roster)
    paths = init_federation_pki(roster, Path(args.out), force=args.force)
    print(f"CA: {paths.ca_cert}")
    for ident in roster.identities():
        print(f"{ident}: {paths.cert_for(ident)} (key {paths.key_for(ident)})")
    return 0


def synth(args: argparse.Namespace) -> int:
    from smpc_ehr.data.synth import generate_federation

    if args.roster:
        from smpc_ehr.config.roster import load_roster

        party_ids = list(load_roster(args.roster).party_ids())
    else:
        party_ids = [p.strip() for p in args.parties.split(",") if p.strip()]
    sizes = [args.patients] * len(party_ids) if args.equal_sizes else None
    truth = generate_federation(
        party_ids,
        args.patients,
        args.seed,
        Path(args.out),
        sizes=sizes,
        fmt=args.format,
        overlap=args.overlap,
    )
    for party in party_ids:
        print(f"{party}: {truth.sizes[party]} patients -> {Path(args.out) / party}")
    return 0


def protocol_show(args: argparse.Namespace) -> int:
    from smpc_ehr.study.template import load_template

    template = load_template(args.file)
    print(f"{template.name}: {template.title}")
    print(f"hash:     {template.canonical_hash}")
    print(f"analysis: {template.analysis} (default backend {template.backend})")
    print("parameters:")
    for spec in template.parameters:
        facts = [spec.type, "required" if spec.required else "optional"]
        if spec.choices is not None or spec.min is not None or spec.max is not None:
            facts.append(spec.bounds_text())
        if spec.max_items is not None:
            facts.append(f"at most {spec.max_items} items")
        if spec.default is not None:
            facts.append(f"default {spec.default}")
        print(f"  {spec.name} ({'; '.join(facts)}): {spec.help}")
    print("leakage:")
    print("  " + template.leakage.strip().replace("\n", "\n  "))
    return 0


_PROCESSES = {
    # role: (config loader, server entry point), imported only when that role starts
    "party": ("smpc_ehr.config.party:load_party_config", "smpc_ehr.party.server:run"),
    "coordinator": (
        "smpc_ehr.config.coordinator:load_coordinator_config",
        "smpc_ehr.coordinator.server:run",
    ),
    "dealer": ("smpc_ehr.config.dealer:load_dealer_config", "smpc_ehr.dealer.server:run"),
}


def _load(target: str) -> Any:
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


def serve(args: argparse.Namespace) -> int:
    """`smpc-ehr party|coordinator|dealer --config FILE`: load, log, serve until stopped."""
    loader, entry = _PROCESSES[args.command]
    config = _load(loader)(args.config)
    _setup_logging(config.log_level, config.id)
    threads = getattr(config, "compute_threads", None)  # parties and the dealer
    if threads is not None:  # before the server's modules load numpy and torch
        limit_compute_threads(threads)
    log = logging.getLogger(f"smpc_ehr.{args.command}")
    try:
        _load(entry)(config)
    except KeyboardInterrupt:
        log.info("%s %s: exiting: interrupted", args.command, config.id)
        raise
    except BaseException as exc:
        log.error("%s %s: exiting on error: %s", args.command, config.id, exc or type(exc))
        raise
    log.info("%s %s: exited cleanly", args.command, config.id)
    return 0


def _client(args: argparse.Namespace) -> Client:
    if args.config:
        return Client.from_config(args.config)
    state = Path(args.state or DEFAULT_STATE)
    if not (state / LOCAL_ANALYST_CONFIG).exists():
        raise ConfigError(
            f"no local federation in {state}: start one with `smpc-ehr local up`, "
            "or pass --config ANALYST.toml for a real federation"
        )
    return Client.from_state(state)


def run(args: argparse.Namespace) -> int:
    from smpc_ehr.study.template import load_template, parse_template

    params = parse_set_options(args.sets)
    # As Client.run reads it: a template file, else the template's TOML text itself.
    # Read once here, so the table layout follows the very template that is submitted.
    path = Path(args.protocol)
    if path.suffix == ".toml" or path.exists():
        template = load_template(path)
    else:
        template = parse_template(args.protocol)
    if args.plot:
        from smpc_ehr.cli.plot import check_plot  # before the job: no result lost to a typo

        check_plot(template.analysis)
    terminal = sys.stderr.isatty()
    # A terminal gets the redrawn bar (not with --json), anything else a line per phase.
    printer = ProgressPrinter(terminal, quiet=args.quiet or (terminal and args.json))
    with _client(args) as client:
        result = client.run(
            template,
            params,
            backend=args.backend,
            deadline_seconds=args.deadline,
            parties=args.parties,
            on_progress=printer.progress,
            on_submitted=printer.submitted,
        )
    printer.done(result.job_id, result.elapsed_seconds)
    if args.csv:
        from smpc_ehr.cli.export import tidy_rows, write_csv  # loads every analysis: only here

        write_csv(tidy_rows(result, template.analysis), args.csv)
    if args.csv == "-":
        pass  # the CSV is the output
    elif args.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        from smpc_ehr.cli.render import render_result  # loads every analysis: only here

        print(render_result(result, template.analysis))
    if args.plot:  # after the result is shown: a figure's failure does not hide it
        from smpc_ehr.cli.plot import write_plot

        write_plot(result, args.plot, template.analysis)
    return 0


def budget(args: argparse.Namespace) -> int:
    """`smpc-ehr budget`: each party's privacy budget, spent and remaining, per analyst and
    in total, read from its ledger (one party's config, or every party of a local
    federation)."""
    from smpc_ehr.config.party import load_party_config
    from smpc_ehr.local.federation import party_configs
    from smpc_ehr.policy.ledger import PrivacyLedger

    paths = [Path(args.config)] if args.config else party_configs(Path(args.state or DEFAULT_STATE))
    for index, path in enumerate(paths):
        config = load_party_config(path, check_files=False)
        ledger = PrivacyLedger.in_state_folder(config.state, config.id, config.policy.privacy)
        if index:
            print()
        print("\n".join(ledger.report().lines()))
    return 0


def local_up(args: argparse.Namespace) -> int:
    from smpc_ehr.local.federation import up
    from smpc_ehr.policy.privacy import PrivacyPolicy

    protocols = Path(args.protocols)
    if not protocols.is_dir() and not args.approve:
        raise ConfigError(
            f"no templates to approve: {protocols} is not a folder and no --approve FILE was given"
        )
    federation = up(
        Path(args.data),
        Path(args.state),
        protocols=protocols if protocols.is_dir() else None,
        approve=[Path(p) for p in args.approve],
        min_cell_count=args.min_cell_count,
        timeout=args.timeout,
        privacy=PrivacyPolicy(
            require_dp=args.require_dp, epsilon_budget_per_analyst=args.epsilon_budget
        )
        if args.require_dp or args.epsilon_budget is not None
        else None,
        allow_partial=args.allow_partial,
    )
    for ident, address in federation.addresses.items():
        print(f"{ident}: {address} (pid {federation.pids[ident]})")
    print(f"federation is up; state in {federation.state_dir}")
    return 0


def local_down(args: argparse.Namespace) -> int:
    from smpc_ehr.local.federation import down

    stopped = down(Path(args.state))
    print(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")
    return 0
