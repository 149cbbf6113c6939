"""The command-line options the benchmarks share, and their value types."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from benchsuite.harness import ROOT

DEFAULT_DATA_ROOT = ROOT / ".bench-data"
BACKENDS = ("mpyc", "crypten")
"""The MPC backends a benchmark on a federation runs, in its tables' order."""


def add_data_options(parser: argparse.ArgumentParser) -> None:
    """The options every benchmark on synthetic data shares: its seed and its cache."""
    parser.add_argument("--seed", type=int, default=7, help="synthetic data seed (default 7)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_ROOT,
        help="cache of generated data (default .bench-data)",
    )


def add_quick_option(parser: argparse.ArgumentParser, what: str) -> None:
    """`--quick`: a small run, `what` says how small."""
    parser.add_argument("--quick", action="store_true", help=f"small run: {what}")


def add_backends_option(parser: argparse.ArgumentParser, what: str = "") -> None:
    """`--backends`: some of BACKENDS (default all), `what` says what each gives."""
    parser.add_argument(
        "--backends",
        type=backend_list,
        default=BACKENDS,
        help=f"MPC backends{what} (default {','.join(BACKENDS)})",
    )


def size_list(text: str) -> tuple[int, ...]:
    """Patients per party, like 10000,100000: sorted, each once."""
    try:
        values = tuple(int(v.replace("_", "")) for v in text.split(",") if v.strip())
    except ValueError:
        message = f"expected numbers like 10000,100000, got {text!r}"
        raise argparse.ArgumentTypeError(message) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("sizes must be positive")
    return tuple(sorted(set(values)))


def backend_list(text: str) -> tuple[str, ...]:
    """Some of BACKENDS, like mpyc,crypten, in BACKENDS' order."""
    values = tuple(v.strip() for v in text.split(",") if v.strip())
    unknown = [v for v in values if v not in BACKENDS]
    if not values or unknown:
        raise argparse.ArgumentTypeError(f"backends are {', '.join(BACKENDS)}, got {text!r}")
    return tuple(b for b in BACKENDS if b in values)


def party_list(text: str) -> tuple[int, ...]:
    """Party counts of MPyC federations, like 3,5,7."""
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 3,5,7, got {text!r}") from None
    if not values or min(values) < 3:
        raise argparse.ArgumentTypeError("MPyC needs at least 3 parties")
    return values


def data_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The settings `add_data_options` and `add_quick_option` give a benchmark's Config."""
    return {"seed": args.seed, "data_root": args.data_dir.resolve(), "quick": bool(args.quick)}
