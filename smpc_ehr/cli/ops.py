"""Operator subcommands: `config check`, `health` and `templates` (registered by
`cli.build_parser` with one call, so other subcommands merge beside them)."""

from __future__ import annotations

import argparse
import importlib.metadata
import math

import smpc_ehr


def package_version() -> str:
    """The installed package's version (its metadata), else the source tree's."""
    try:
        return importlib.metadata.version("smpc-ehr")
    except importlib.metadata.PackageNotFoundError:
        return smpc_ehr.__version__


def positive_number(text: str) -> float:
    """An option's value that must be a positive, finite number (--timeout, budgets)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def add_version(parser: argparse.ArgumentParser) -> None:
    """`smpc-ehr --version`."""
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")


def register(sub: argparse._SubParsersAction) -> None:
    """Add `config check`, `health` and `templates` to the `smpc-ehr` subcommands."""
    config = sub.add_parser("config", help="check a config before starting its process")
    config_sub = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    check = config_sub.add_parser(
        "check",
        help="validate a party/coordinator/dealer/analyst config: roster, data folder, "
        "key and certificate (nothing is started)",
    )
    check.add_argument("file", help="config TOML")
    check.set_defaults(handler=config_check)

    health = sub.add_parser(
        "health", help="ask every member this config's role reaches whether it answers"
    )
    health.add_argument("--config", required=True, help="any role's config TOML")
    health.add_argument(
        "--timeout",
        type=positive_number,
        default=3.0,
        help="seconds to wait for each member (default 3)",
    )
    health.set_defaults(handler=health_check)

    templates = sub.add_parser("templates", help="which templates (by hash) each hospital approves")
    templates.add_argument("--config", required=True, help="analyst config TOML")
    templates.add_argument(
        "--timeout", type=positive_number, default=5.0, help="seconds (default 5)"
    )
    templates.set_defaults(handler=approved_templates)


def config_check(args: argparse.Namespace) -> int:
    """`smpc-ehr config check FILE`."""
    from smpc_ehr.cli.config_check import check_config, report_lines

    print("\n".join(report_lines(check_config(args.file))))
    return 0


def health_check(args: argparse.Namespace) -> int:
    """`smpc-ehr health --config X.toml`: exit 1 when a member does not answer."""
    from smpc_ehr.cli.health import check_health, health_table

    rows = check_health(args.config, timeout=args.timeout)
    print(health_table(rows))
    return 0 if all(r.reachable for r in rows) else 1


def approved_templates(args: argparse.Namespace) -> int:
    """`smpc-ehr templates --config analyst.toml`."""
    from smpc_ehr.cli.health import approvals, approvals_table

    print(approvals_table(approvals(args.config, timeout=args.timeout)))
    return 0
