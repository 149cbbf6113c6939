"""The project's benchmarks, one subcommand each:

    python scripts/bench.py counts [--quick] [--parties 3,5,7] [--patients N] [--repeats R]
    python scripts/bench.py transport [--quick] [--repeats R] [--backends crypten,mpyc]
    python scripts/bench.py stats [--quick] [--sizes 10000,100000,1000000] [--repeats R]
                                  [--backends mpyc,crypten]
    python scripts/bench.py logreg [--quick] [--patients N] [--repeats R] [--backends mpyc,crypten]
    python scripts/bench.py logreg-full [--quick] [--patients N] [--repeats R] [--warmup W]
    python scripts/bench.py randomness [--quick] [--compare N] [--selftest-size S] [--repeats R]
    python scripts/bench.py kmeans [--quick] [--patients N] [--full-patients N] [--repeats R]
                                   [--warmup W] [--backends mpyc,crypten] [--tol T]
    python scripts/bench.py dp [--quick] [--patients N] [--repeats R] [--real-check]
                               [--dp-steps S]
    python scripts/bench.py dedup [--quick] [--patients N] [--overlap S] [--repeats R]
    python scripts/bench.py wan [--quick] [--patients N] [--delays 0,10,50] [--rate MBIT]
                                [--repeats R] [--backends mpyc,crypten]

Each benchmark prints a readable table and ends with one line holding a JSON object of
its figures (progress goes to stderr). Generated data is cached under .bench-data/.
What each measures, and the previous figures: docs/benchmarks.md.
A new benchmark is a module of scripts/benchsuite/ with `add_arguments(parser)`,
`run(args) -> exit status` and a docstring, built on benchsuite/harness.py (and its
report, data and options modules) and listed in BENCHMARKS below.
"""

from __future__ import annotations

import argparse
import sys
from types import ModuleType

from benchsuite import (
    counts,
    dedup,
    dp,
    kmeans,
    logreg,
    logreg_full,
    randomness,
    stats,
    transport,
    wan,
)
from benchsuite.harness import log, terminate_as_interrupt

BENCHMARKS: dict[str, ModuleType] = {
    "counts": counts,
    "dedup": dedup,
    "transport": transport,
    "stats": stats,
    "logreg": logreg,
    "logreg-full": logreg_full,
    "kmeans": kmeans,
    "randomness": randomness,
    "dp": dp,
    "wan": wan,
}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bench.py", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    sub = p.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    for name, module in BENCHMARKS.items():
        doc = (module.__doc__ or "").strip()
        summary = doc.splitlines()[0] if doc else name
        command = sub.add_parser(
            name, help=summary, description=doc, formatter_class=argparse.RawTextHelpFormatter
        )
        module.add_arguments(command)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    terminate_as_interrupt()
    try:
        status: int = BENCHMARKS[args.benchmark].run(args)
    except KeyboardInterrupt:
        log("interrupted; the federation was brought down")
        return 130
    return status


if __name__ == "__main__":
    sys.exit(main())
