"""`bench.py dedup`: a deduplicated joint count (3 hospitals x ~1,000 linked cohort
patients each, the shipped template's dedup_bound of 1,000) next to the plain count of
the same cohort: time, hops, messages and bytes per party, both checked against the
pooled plaintext (distinct link ids and those at more than one hospital).

Data: `smpc-ehr synth` with equal sizes and `--overlap` on the diabetes patients (E11,
the cohort), so each hospital's cohort is close to the bound and a share of it is
shared. Method and previous figures: docs/benchmarks.md ("Deduplicated count")."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from benchsuite import report
from benchsuite.harness import PROTOCOLS, analyst, local_federation, log, timed
from benchsuite.report import table

PROTOCOL = PROTOCOLS / "rare_disease_count.toml"
CODES = "E11"
BOUND = 1000
"""The shipped template's dedup_bound (a constant of the template)."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--patients", type=int, default=2300, help="patients per hospital")
    p.add_argument("--overlap", type=float, default=0.3, help="share of E11 patients copied")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--seed", type=int, default=17)
    p.add_argument("--quick", action="store_true", help="one run each")


def pooled(data: Path, parties: list[str]) -> tuple[list[int], int, int]:
    """Per hospital its linked cohort size; pooled distinct link ids and shared ones
    (the loader's plaintext cohorts and link ids, outside MPC)."""
    from collections import Counter

    from smpc_ehr.data.cohort import CohortFilter, cohort_members
    from smpc_ehr.data.loader import load_party_data

    links = []
    for party in parties:
        data_of = load_party_data(data / party)
        members, _ = cohort_members(data_of, CohortFilter(codes=(CODES,)))
        links.append(set(data_of.link_id[members]))  # type: ignore[index]
    seen = Counter(link for mine in links for link in mine)
    return [len(mine) for mine in links], len(seen), sum(1 for n in seen.values() if n > 1)


def run(args: argparse.Namespace) -> int:
    from smpc_ehr.data.synth import generate_federation

    parties = ["hospital-1", "hospital-2", "hospital-3"]
    repeats = 1 if args.quick else args.repeats
    problems: list[str] = []
    rows: list[list[Any]] = []
    figures: dict[str, Any] = {"benchmark": "dedup", "bound": BOUND, "codes": CODES}
    with tempfile.TemporaryDirectory(prefix="smpc-bench-dedup-") as tmp:
        data = Path(tmp) / "data"
        generate_federation(
            parties,
            args.patients,
            args.seed,
            data,
            sizes=[args.patients] * 3,
            overlap=args.overlap,
            overlap_codes=(CODES,),
        )
        sizes, distinct, shared = pooled(data, parties)
        log(f"linked cohort per hospital {sizes}; pooled distinct {distinct}, shared {shared}")
        if max(sizes) > BOUND:
            print(f"a cohort of {max(sizes)} exceeds the bound {BOUND}: lower --patients")
            return 2
        figures.update(cohorts=sizes, distinct=distinct, shared=shared)
        with local_federation(data, "dedup") as fed, analyst(fed) as client:
            for name, params in (
                ("count", {"codes": CODES}),
                ("dedup count", {"codes": CODES, "dedup": "yes"}),
            ):
                client.run(PROTOCOL, params)  # warm-up
                seconds = []
                for _ in range(repeats):
                    took, job = timed(lambda p=params: client.run(PROTOCOL, p))
                    seconds.append(took)
                result, cost = job.result, job.cost or {}
                if "dedup" in params and (result["count"], result["shared"]) != (distinct, shared):
                    problems.append(f"dedup gave {result}, pooled {distinct}, {shared}")
                if "dedup" not in params and result["count"] != sum(sizes):
                    problems.append(f"count gave {result['count']}, pooled {sum(sizes)}")
                sent = max((cost.get("bytes_sent") or {0: 0}).values())
                messages = max((cost.get("messages") or {0: 0}).values())
                best = min(seconds)
                rows.append([name, f"{best:.2f}", cost.get("hops"), messages, f"{sent / 1e6:.1f}"])
                figures[name.replace(" ", "_")] = {
                    "seconds": seconds,
                    "hops": cost.get("hops"),
                    "messages_per_party": messages,
                    "bytes_per_party": sent,
                    "result": result,
                }
    print(
        f"3 hospitals, linked E11 cohorts {sizes} (bound {BOUND}); distinct {distinct}, "
        f"shared {shared}"
    )
    print(table(["query", "seconds", "hops", "messages/party", "MB sent/party"], rows))
    return report.finish_figures(figures, problems)
