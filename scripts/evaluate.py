"""The evaluation report of issue 19, in the form of the literature: one command that runs
the experiments on real local federations and writes a report folder.

    python scripts/evaluate.py --quick --out report          # under 5 minutes on 2 cores
    python scripts/evaluate.py --size full --out docs/evaluation/report
    python scripts/evaluate.py --size tiny --out /tmp/r --sections accuracy,overhead

Writes report.md, a self-contained report.html (figures embedded), figures.json (every
section's raw measured figures) and the PNG figures into --out. Sections run in the
order of SECTIONS (scripts/evaluation/<name>.py, each `run(context) -> Section`); a
section whose module does not exist yet is reported as "not built yet". Progress goes
to stderr. How to read the report: docs/evaluation/README.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # smpc_ehr of this checkout
sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchsuite, evaluation

from benchsuite.harness import log, terminate_as_interrupt
from evaluation.report import SECTIONS, run_report
from evaluation.section import Context

SIZES = ("tiny", "quick", "full")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="evaluate.py", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="the same as --size quick")
    p.add_argument("--size", choices=SIZES, help="tiny (the test's), quick, full (default full)")
    p.add_argument("--out", type=Path, required=True, help="the report folder (made if absent)")
    p.add_argument(
        "--sections",
        help="comma-separated sections to run, in SECTIONS' order (default all: "
        + ",".join(SECTIONS)
        + ")",
    )
    p.add_argument(
        "--seed", type=int, default=Context.__dataclass_fields__["seed"].default, help="base seed"
    )
    return p


def chosen_sections(text: str | None) -> list[str]:
    """The sections asked for, in SECTIONS' order; an unknown name is an error."""
    if not text:
        return list(SECTIONS)
    asked = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in asked if s not in SECTIONS]
    if unknown:
        raise SystemExit(
            f"--sections: unknown section(s) {', '.join(unknown)}; known: {', '.join(SECTIONS)}"
        )
    return [s for s in SECTIONS if s in asked]


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.quick and args.size not in (None, "quick"):
        raise SystemExit("--quick and --size disagree")
    size = "quick" if args.quick else (args.size or "full")
    sections = chosen_sections(args.sections)
    terminate_as_interrupt()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    try:
        return run_report(Context(size=size, out=out, seed=args.seed), sections)
    except KeyboardInterrupt:
        log("interrupted; federations were brought down")
        return 130


if __name__ == "__main__":
    sys.exit(main())
