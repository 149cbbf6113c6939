"""`bench.py counts`: latency of a warm joint count under MPC next to pooled plaintext pandas.

Method and previous figures: docs/benchmarks.md."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from benchsuite import harness as h
from benchsuite import options, report, timings
from benchsuite.data import cached_federation_data
from benchsuite.harness import PROTOCOLS, log, timed
from benchsuite.report import table
from benchsuite.timings import Summary

PROTOCOL = PROTOCOLS / "rare_disease_count.toml"
AS_OF = date(2026, 1, 1)
SEXES = ("F", "M", "U")
AGE_BANDS = (*(f"{lo}-{lo + 9}" for lo in range(0, 90, 10)), "90+")
GOAL_RATIO = 3.0
GOAL_PARTIES = 3

Cells = dict[tuple[str, ...], int | None]
"""Count per cell (key: the stratum values in `by` order; () without `by`); None = suppressed."""


@dataclass(frozen=True)
class Query:
    """One benchmark query: the protocol parameters and the same question in pandas."""

    name: str
    codes: str
    by: tuple[str, ...] = ()

    @property
    def params(self) -> dict[str, str]:
        params = {"codes": self.codes, "as_of": AS_OF.isoformat()}
        if self.by:
            params["by"] = ",".join(self.by)
        return params


QUERIES = (
    Query("count E75.22", "E75.22"),
    Query("E11 by sex x age band", "E11", ("sex", "age_band")),
)


@dataclass(frozen=True)
class Config:
    parties: tuple[int, ...]
    patients: int
    repeats: int
    warmup: int
    seed: int
    data_root: Path
    quick: bool


# --- the plaintext baseline -----------------------------------------------------------


@dataclass
class Pooled:
    """All parties' patients and conditions in one pair of pandas DataFrames."""

    patients: Any  # pandas.DataFrame: sex (category), birth_date (datetime64)
    conditions: Any  # pandas.DataFrame: code (category), patient (row in patients)

    @classmethod
    def load(cls, folders: Sequence[Path]) -> Pooled:
        import pandas as pd

        pat = pd.concat(
            [
                pd.read_parquet(f / "patients.parquet", columns=["patient_id", "sex", "birth_date"])
                for f in folders
            ],
            ignore_index=True,
        )
        cond = pd.concat(
            [
                pd.read_parquet(f / "conditions.parquet", columns=["patient_id", "code"])
                for f in folders
            ],
            ignore_index=True,
        )
        pat["sex"] = pat["sex"].astype("category")
        pat["birth_date"] = pd.to_datetime(pat["birth_date"])
        cond["code"] = cond["code"].astype("category")
        cond["patient"] = pd.Index(pat["patient_id"]).get_indexer(cond["patient_id"])
        if (cond["patient"] < 0).any():
            raise ValueError("a condition row names a patient that is not in patients")
        return cls(pat, cond.drop(columns="patient_id"))

    def run(self, q: Query) -> Any:
        """The timed part: the answer as pandas returns it."""
        cond, pat = self.conditions, self.patients
        cases = cond.loc[cond["code"].str.startswith(q.codes), "patient"]
        if not q.by:
            return cases.nunique()
        sub = pat.iloc[cases.unique()]
        born = sub["birth_date"].dt
        after_birthday = born.month * 100 + born.day > AS_OF.month * 100 + AS_OF.day
        age = AS_OF.year - born.year - after_birthday
        sub, age = sub[age >= 0], age[age >= 0]
        keys = {"sex": sub["sex"], "age_band": (age // 10).clip(upper=9).rename("band")}
        return sub.groupby([keys[v] for v in q.by], observed=True).size()

    @staticmethod
    def cells(q: Query, answer: Any) -> Cells:
        """Every cell of the public layout, from what `run` returned (absent cells are 0)."""
        if not q.by:
            return {(): int(answer)}
        found: dict[tuple[str, ...], int] = {}
        for key, n in answer.items():
            values = key if isinstance(key, tuple) else (key,)
            labels = tuple(
                AGE_BANDS[int(v)] if var == "age_band" else str(v)
                for var, v in zip(q.by, values, strict=True)
            )
            found[labels] = int(n)
        return {key: found.get(key, 0) for key in layout(q.by)}


def layout(by: tuple[str, ...]) -> list[tuple[str, ...]]:
    """The public cell layout of a stratification, in row-major order."""
    import itertools

    levels = {"sex": SEXES, "age_band": AGE_BANDS}
    return list(itertools.product(*(levels[v] for v in by)))


# --- the MPC side ---------------------------------------------------------------------


def mpc_cells(q: Query, result: dict[str, Any]) -> tuple[Cells, int]:
    """The released cells of a count result, and its threshold."""
    threshold = int(result["threshold"])
    if not q.by:
        return {(): result["count"]}, threshold
    return {tuple(c[v] for v in q.by): c["count"] for c in result["cells"]}, threshold


def mismatches(q: Query, mpc: Cells, threshold: int, plain: Cells) -> list[str]:
    """Differences between the MPC and plaintext answers (empty when they agree)."""
    problems = []
    if set(mpc) != set(plain):
        problems.append(f"{q.name}: cells differ: MPC {sorted(mpc)} vs pandas {sorted(plain)}")
    for key, value in mpc.items():
        truth = plain.get(key) or 0
        label = "/".join(key) or "total"
        if value is None and truth >= threshold:
            problems.append(f"{q.name} [{label}]: suppressed by MPC, pandas counts {truth}")
        elif value is not None and value != truth:
            problems.append(f"{q.name} [{label}]: MPC {value} != pandas {truth}")
    return problems


# --- one party count ------------------------------------------------------------------


@dataclass
class PartyRun:
    """Everything measured for one party count."""

    parties: int
    setup: dict[str, Any]
    samples: dict[str, h.Samples]
    problems: list[str]
    steps: dict[str, timings.PartySteps]
    """The parties' logged steps (hops, messages, bytes) of every job, by job id."""


def measure(cfg: Config, k: int) -> PartyRun:
    ids, tag = h.party_ids(k), f"[{k} parties]"
    name = f"counts-{k}x{cfg.patients}-seed{cfg.seed}"
    log(f"[{k} parties] data {cfg.data_root / name}")
    data, gen_seconds = cached_federation_data(
        cfg.data_root, name, ids, [cfg.patients] * k, cfg.seed
    )
    if gen_seconds is not None:
        log(f"[{k} parties] generated {k} x {cfg.patients:,} patients in {gen_seconds:.1f} s")
    load_seconds, pooled = timed(lambda: Pooled.load([data / i for i in ids]))
    log(f"[{k} parties] pandas: loaded {k * cfg.patients:,} patients in {load_seconds:.1f} s")
    with h.local_federation(data, tag) as fed:
        setup = timings.setup_figures(fed, gen_seconds, pandas_load_seconds=load_seconds)
        samples = {q.name: h.Samples() for q in QUERIES}
        problems: list[str] = []
        with h.analyst(fed) as client:
            pairs = [_pair(client, q, pooled, samples[q.name], problems) for q in QUERIES]
            h.alternate(pairs, cfg.warmup, cfg.repeats, tag, settle_seconds=0.0)
        setup["rss_mb_after_queries"] = fed.rss_mb()
        steps = timings.party_steps(fed)
    return PartyRun(k, setup, samples, problems, steps)


def _pair(client: Any, q: Query, pooled: Pooled, s: h.Samples, problems: list[str]) -> h.Pair:
    """The query's MPC job and its pandas twin."""

    def check(result: dict[str, Any]) -> list[str]:
        return mismatches(q, *mpc_cells(q, result), pooled.cells(q, pooled.run(q)))

    return h.checked_pair(
        q.name,
        lambda: h.run_job(client, PROTOCOL, q.params),
        lambda: pooled.run(q),
        check,
        s,
        problems,
    )


# --- report ---------------------------------------------------------------------------


def rows_of(cfg: Config, runs: Sequence[PartyRun]) -> list[dict[str, Any]]:
    rows = []
    for run in runs:
        for q in QUERIES:
            s = run.samples[q.name]
            mpc, plain = Summary.of(s.jobs.seconds), Summary.of(s.baseline)
            server = Summary.of(s.jobs.coordinator_seconds)
            rows.append(
                {
                    "parties": run.parties,
                    "patients_per_party": cfg.patients,
                    "patients_total": run.parties * cfg.patients,
                    "query": q.name,
                    "params": q.params,
                    "mpc": mpc.as_dict(),
                    "mpc_coordinator": server.as_dict(),
                    "pandas": plain.as_dict(),
                    "ratio": round(mpc.median_ms / plain.median_ms, 3),
                    **timings.step_figures(s.jobs.job_ids, run.steps, count_digits=0),
                }
            )
    return rows


def headline(rows: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The issue's goal: 3 parties, the plain count, MPC median / pandas median <= 3."""
    for row in rows:
        if row["parties"] == GOAL_PARTIES and row["query"] == QUERIES[0].name:
            return {
                "parties": GOAL_PARTIES,
                "query": row["query"],
                "ratio": row["ratio"],
                "goal_ratio": GOAL_RATIO,
                "goal_met": row["ratio"] <= GOAL_RATIO,
            }
    return None


def print_report(cfg: Config, runs: Sequence[PartyRun]) -> int:
    rows = rows_of(cfg, runs)
    headers = ["parties", "patients/party", "query", "MPC median ms", "MPC p90 ms"]
    headers += ["pandas median ms", "ratio", "hops", "messages", "KiB sent"]
    body = [
        [
            r["parties"],
            r["patients_per_party"],
            r["query"],
            r["mpc"]["median_ms"],
            r["mpc"]["p90_ms"],
            r["pandas"]["median_ms"],
            r["ratio"],
            r["hops"],
            r["messages_per_party"],
            report.per(r["bytes_sent_per_party"], 1024),
        ]
        for r in rows
    ]
    problems = [p for run in runs for p in run.problems]
    print(f"\ncounts: warm joint-count latency, end to end (analyst), {cfg.repeats} repetitions")
    print(table(headers, body))
    goal = headline(rows)
    if goal:
        verdict = "met" if goal["goal_met"] else "NOT met"
        print(
            f"\ngoal ({GOAL_PARTIES} parties, {goal['query']}): ratio {goal['ratio']:.2f} "
            f"<= {GOAL_RATIO:g}: {verdict}"
        )
    figures = {
        "benchmark": "counts",
        "quick": cfg.quick,
        "patients_per_party": cfg.patients,
        "repeats": cfg.repeats,
        "warmup": cfg.warmup,
        "seed": cfg.seed,
        "results": rows,
        "setup": {str(run.parties): run.setup for run in runs},
        f"ratio_{GOAL_PARTIES}_parties": goal["ratio"] if goal else None,
        "goal": goal,
    }
    return report.finish_figures(figures, problems)


# --- command line ---------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    options.add_quick_option(parser, "20,000 patients per party, 3 and 5 parties, 5 repeats")
    parser.add_argument("--parties", type=options.party_list, help="party counts (default 3,5,7)")
    parser.add_argument("--patients", type=int, help="patients per party (default 1,000,000)")
    parser.add_argument("--repeats", type=int, help="timed repetitions per query (default 15)")
    parser.add_argument("--warmup", type=int, default=2, help="warm-up queries (default 2)")
    options.add_data_options(parser)


def config(args: argparse.Namespace) -> Config:
    quick = bool(args.quick)
    cfg = Config(
        parties=args.parties or ((3, 5) if quick else (3, 5, 7)),
        patients=args.patients or (20_000 if quick else 1_000_000),
        repeats=args.repeats or (5 if quick else 15),
        warmup=max(0, args.warmup),
        **options.data_settings(args),
    )
    if cfg.patients < 1 or cfg.repeats < 1:
        raise SystemExit("--patients and --repeats must be positive")
    return cfg


def run(args: argparse.Namespace) -> int:
    cfg = config(args)
    runs = [measure(cfg, k) for k in cfg.parties]
    return print_report(cfg, runs)
