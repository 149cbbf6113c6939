"""Operator subcommands: `config check` (registered by
`cli.build_parser` with one call, so other subcommands merge beside them)."""

from __future__ import annotations

import argparse
import importlib.metadata

import smpc_ehr


def package_version() -> str:
    """The installed package's version (its metadata), else the source tree's."""
    try:
        return importlib.metadata.version("smpc-ehr")
    except importlib.metadata.PackageNotFoundError:
        return smpc_ehr.__version__


def add_version(parser: argparse.ArgumentParser) -> None:
    """`smpc-ehr --version`."""
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")


def register(sub: argparse._SubParsersAction) -> None:
    """Add `config check` to the `smpc-ehr` subcommands."""
    config = sub.add_parser("config", help="check a config before starting its process")
    config_sub = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    check = config_sub.add_parser(
        "check",
        help="validate a party/coordinator/dealer/analyst config: roster, data folder, "
        "key and certificate (nothing is started)",
    )
    check.add_argument("file", help="config TOML")
    check.set_defaults(handler=config_check)


def config_check(args: argparse.Namespace) -> int:
    """`smpc-ehr config check FILE`."""
    from smpc_ehr.ops.config_check import check_config, report_lines

    print("\n".join(report_lines(check_config(args.file))))
    return 0
