"""The `smpc-ehr run` options of exports and progress (kept here, not in cli/__init__,
so that its parser is not loaded with the analyses: export.py imports them)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def csv_target(text: str) -> str:
    """--csv: '-' or a file in an existing folder (checked before the job runs, so a
    typo does not cost a computed result)."""
    if text != "-" and not Path(text).resolve().parent.is_dir():
        raise argparse.ArgumentTypeError(f"no such folder for the CSV file: {text!r}")
    if text != "-" and Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"is a folder, not a file: {text!r}")
    return text


def plot_target(text: str) -> str:
    """--plot: a .png file in an existing folder (checked before the job runs)."""
    if Path(text).suffix.lower() != ".png":
        raise argparse.ArgumentTypeError(
            f"the plot is written as PNG: name a .png file, not {text!r}"
        )
    if not Path(text).resolve().parent.is_dir():
        raise argparse.ArgumentTypeError(f"no such folder for the plot: {text!r}")
    return text


def register(run: Any) -> None:
    """Add --csv, --plot and --quiet to the `run` subcommand's parser."""
    run.add_argument(
        "--csv",
        type=csv_target,
        metavar="FILE",
        help="also write the result as tidy CSV, one row per estimate ('-': to stdout, "
        "instead of the table)",
    )
    run.add_argument(
        "--plot",
        type=plot_target,
        metavar="FILE.png",
        help="also draw the released result as a PNG (Kaplan-Meier, histogram, logistic "
        "evaluation, k-means; needs matplotlib: pip install 'smpc-ehr[plots]')",
    )
    run.add_argument(
        "--quiet",
        action="store_true",
        help="no progress on stderr (by default a bar on a terminal, else a line per phase)",
    )
