"""The demo's plaintext check for the joint summary: n, mean and sd per variable,
computed directly from the pooled CSV files.

Independent of smpc_ehr's own code on purpose (only the standard library), so that
the demo compares the MPC result with a separate computation of the same numbers.
All patients are covered (no cohort filter); `--by` splits them by a column's values
(for example sex or readmit_30d); missing values are left out variable by variable.
"""

from __future__ import annotations

import argparse
import csv
import statistics
from collections import defaultdict
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--variables", required=True, help="comma-separated numeric columns")
    parser.add_argument("--by", default="", help="a column to split by (e.g. sex)")
    args = parser.parse_args()
    variables = args.variables.split(",")
    values: dict[tuple[str, str], list[float]] = defaultdict(list)
    for folder in sorted(p for p in args.data.iterdir() if (p / "patients.csv").exists()):
        with open(folder / "patients.csv", newline="") as f:
            for row in csv.DictReader(f):
                stratum = row[args.by] if args.by else ""
                for name in variables:
                    if row[name] != "":
                        values[(stratum, name)].append(float(row[name]))
    print(f"{args.by or '':<12}{'variable':<10}{'n':>8}{'mean':>10}{'sd':>10}")
    for (stratum, name), xs in sorted(values.items()):
        if not stratum and args.by:
            continue  # patients missing the stratifying column
        mean, sd = statistics.fmean(xs), statistics.stdev(xs)
        print(f"{stratum:<12}{name:<10}{len(xs):>8}{mean:>10.4g}{sd:>10.4g}")


if __name__ == "__main__":
    main()
