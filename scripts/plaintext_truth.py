"""The plaintext check for the demo: joint counts computed directly from the CSV files.

Independent of smpc_ehr's own code on purpose (only the standard library), so that
the demo compares the MPC result with a separate computation of the same numbers.
Prints one line of JSON: {"count": N} or {"cells": [{"sex": .., "age_band": .., "count": N}]}.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import itertools
import json
from collections import Counter
from pathlib import Path

SEXES = ("F", "M", "U")
BANDS = (*(f"{10 * i}-{10 * i + 9}" for i in range(9)), "90+")


def age_at(birth: str, as_of: dt.date) -> int:
    b = dt.date.fromisoformat(birth)
    return as_of.year - b.year - ((as_of.month, as_of.day) < (b.month, b.day))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--codes", required=True, help="comma-separated codes or prefixes")
    parser.add_argument("--by", default="", help="sex, age_band or both, comma-separated")
    parser.add_argument("--as-of", default="2026-01-01")
    parser.add_argument("--text", action="store_true", help="readable lines instead of JSON")
    args = parser.parse_args()
    prefixes = [c.strip().upper().rstrip("*").rstrip(".") for c in args.codes.split(",")]
    by = [b for b in args.by.split(",") if b]
    as_of = dt.date.fromisoformat(args.as_of)
    cells: Counter[tuple[str, ...]] = Counter()
    for folder in sorted(p for p in args.data.iterdir() if (p / "patients.csv").exists()):
        with open(folder / "conditions.csv", newline="") as f:
            rows = csv.DictReader(f)
            cases = {r["patient_id"] for r in rows if r["code"].startswith(tuple(prefixes))}
        with open(folder / "patients.csv", newline="") as f:
            for r in csv.DictReader(f):
                age = age_at(r["birth_date"], as_of)
                if r["patient_id"] in cases and age >= 0:  # born by the reference date
                    key = {"sex": r["sex"], "age_band": BANDS[min(age // 10, 9)]}
                    cells[tuple(key[b] for b in by)] += 1
    if not by:
        print(f"    patients: {cells[()]}" if args.text else json.dumps({"count": cells[()]}))
        return
    levels = {"sex": SEXES, "age_band": BANDS}
    out = [
        {**dict(zip(by, combo, strict=True)), "count": cells[combo]}
        for combo in itertools.product(*(levels[b] for b in by))
    ]
    if not args.text:
        print(json.dumps({"cells": out}))
        return
    for cell in out:
        if cell["count"]:
            print("    " + "  ".join(str(v) for v in cell.values()))
    print("    (cells not listed are 0)")


if __name__ == "__main__":
    main()
