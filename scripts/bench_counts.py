"""`bench.py counts`: latency of a warm joint count under MPC next to pooled plaintext pandas.

For each party count k, a synthetic federation of k parties with N patients each is
generated once (cached under .bench-data/) and started as a real local federation
(`local up`: one process per party and a coordinator, mutual TLS, MPyC). After a few
warm-up queries, every query is timed R times end to end in the analyst process:
`time.perf_counter()` around `Client.run(...)`, from submitting the protocol to holding
the released result. The federation is brought down afterwards, also on Ctrl-C.

The plaintext baseline is the same question asked of all k*N patients pooled in one
pandas process, timed in the same run with the repetitions interleaved (MPC, pandas,
MPC, ...) so that machine noise hits both alike; the ratio is what the goal is about
(issue: median at most 3x the pooled plaintext time, for 3 parties of 1,000,000).

The pandas side is what a pandas user would write, with the same preparation at load
time that a party does when it starts (load time is not counted, on either side):
- codes and sex are categoricals (a party also keeps a table of distinct codes);
- each condition row carries its patient's row number, linked once at load
  (`Index.get_indexer`), as the party's loader links `cond_patient`. Joining the
  800,000 E11 patients to 3,000,000 patients on string ids at query time instead
  takes 2-10 s in pandas 3 (merge / isin), which would flatter MPC.
Queries (ages in full years on as_of 2026-01-01, bands 0-9, ..., 80-89, 90+):
- count:   cond.loc[cond.code.str.startswith("E75.22"), "patient"].nunique()
- by sex, age band: the distinct E11 patients' rows (iloc), their age, then
  groupby([sex, band]).size().
Each plaintext answer is checked against the MPC one (a suppressed cell must be below
the threshold); any mismatch is printed loudly and makes the exit status nonzero.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from _bench_common import (
    PROTOCOLS,
    RunningFederation,
    Summary,
    add_data_options,
    cached_federation_data,
    finish_figures,
    local_federation,
    log,
    party_ids,
    table,
    timed,
)

PROTOCOL = PROTOCOLS / "rare_disease_count.toml"
AS_OF = date(2026, 1, 1)
SEXES = ("F", "M", "U")
AGE_BANDS = (*(f"{lo}-{lo + 9}" for lo in range(0, 90, 10)), "90+")
GOAL_RATIO = 3.0
GOAL_PARTIES = 3
MIN_CELL_COUNT = 11
UP_TIMEOUT = 900.0
JOB_DEADLINE = 120.0

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
        truth = plain.get(key, 0)
        label = "/".join(key) or "total"
        if value is None and truth >= threshold:
            problems.append(f"{q.name} [{label}]: suppressed by MPC, pandas counts {truth}")
        elif value is not None and value != truth:
            problems.append(f"{q.name} [{label}]: MPC {value} != pandas {truth}")
    return problems


# --- one party count ------------------------------------------------------------------


@dataclass
class Samples:
    mpc: list[float] = field(default_factory=list)
    mpc_server: list[float] = field(default_factory=list)
    pandas: list[float] = field(default_factory=list)


@dataclass
class PartyRun:
    """Everything measured for one party count."""

    parties: int
    setup: dict[str, Any]
    samples: dict[str, Samples]
    problems: list[str]


def measure(cfg: Config, k: int) -> PartyRun:
    ids = party_ids(k)
    name = f"counts-{k}x{cfg.patients}-seed{cfg.seed}"
    log(f"[{k} parties] data {cfg.data_root / name}")
    data, gen_seconds = cached_federation_data(
        cfg.data_root, name, ids, [cfg.patients] * k, cfg.seed
    )
    if gen_seconds is not None:
        log(f"[{k} parties] generated {k} x {cfg.patients:,} patients in {gen_seconds:.1f} s")
    load_seconds, pooled = timed(lambda: Pooled.load([data / i for i in ids]))
    log(f"[{k} parties] pandas: loaded {k * cfg.patients:,} patients in {load_seconds:.1f} s")
    log(f"[{k} parties] local up ...")
    with local_federation(data, MIN_CELL_COUNT, UP_TIMEOUT) as fed:
        log(f"[{k} parties] local up took {fed.up_seconds:.1f} s")
        setup = {
            "generate_seconds": None if gen_seconds is None else round(gen_seconds, 2),
            "local_up_seconds": round(fed.up_seconds, 2),
            "party_load_seconds": party_load_seconds(fed),
            "pandas_load_seconds": round(load_seconds, 2),
            "rss_mb_after_up": fed.rss_mb(),
        }
        samples, problems = query_loop(cfg, fed, pooled)
        setup["rss_mb_after_queries"] = fed.rss_mb()
    return PartyRun(k, setup, samples, problems)


def query_loop(
    cfg: Config, fed: RunningFederation, pooled: Pooled
) -> tuple[dict[str, Samples], list[str]]:
    """Warm up, then time every query R times, alternating MPC and pandas."""
    from smpc_ehr.client.client import Client

    samples = {q.name: Samples() for q in QUERIES}
    problems: list[str] = []
    with Client.from_state(fed.state_dir) as client:

        def mpc(q: Query) -> Any:
            return client.run(PROTOCOL, q.params, deadline_seconds=JOB_DEADLINE)

        for q in QUERIES:
            for _ in range(cfg.warmup):
                mpc(q)
                pooled.run(q)
            first = mpc(q).result
            problems += mismatches(q, *mpc_cells(q, first), Pooled.cells(q, pooled.run(q)))
        for rep in range(cfg.repeats):
            for q in QUERIES:
                s = samples[q.name]
                mpc_first = rep % 2 == 0
                if mpc_first:
                    _time_mpc(mpc, q, s)
                s.pandas.append(timed(lambda q=q: pooled.run(q))[0])
                if not mpc_first:
                    _time_mpc(mpc, q, s)
            log(f"  repetition {rep + 1}/{cfg.repeats} done")
    return samples, problems


def _time_mpc(mpc: Callable[[Query], Any], q: Query, s: Samples) -> None:
    elapsed, job = timed(lambda: mpc(q))
    s.mpc.append(elapsed)
    s.mpc_server.append(float(job.elapsed_seconds))


_LOADED = re.compile(r"loaded \d+ patients from .* in ([0-9.]+) s")


def party_load_seconds(fed: RunningFederation) -> float | None:
    """The longest data load a party logged at start-up (seconds), if it logged one."""
    times = []
    for log_file in (fed.state_dir / "logs").glob("*.log"):
        match = _LOADED.search(log_file.read_text(errors="replace"))
        if match:
            times.append(float(match.group(1)))
    return max(times) if times else None


# --- report ---------------------------------------------------------------------------


def rows_of(cfg: Config, runs: Sequence[PartyRun]) -> list[dict[str, Any]]:
    rows = []
    for run in runs:
        for q in QUERIES:
            s = run.samples[q.name]
            mpc, server, plain = Summary.of(s.mpc), Summary.of(s.mpc_server), Summary.of(s.pandas)
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
    headers += ["pandas median ms", "ratio"]
    body = [
        [
            r["parties"],
            r["patients_per_party"],
            r["query"],
            r["mpc"]["median_ms"],
            r["mpc"]["p90_ms"],
            r["pandas"]["median_ms"],
            r["ratio"],
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
    for p in problems:
        print(f"MISMATCH: {p}")
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
    return finish_figures(figures, problems)


# --- command line ---------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small run: 20,000 patients per party, 3 and 5 parties, 5 repeats",
    )
    parser.add_argument("--parties", type=_int_list, help="party counts (default 3,5,7)")
    parser.add_argument("--patients", type=int, help="patients per party (default 1,000,000)")
    parser.add_argument("--repeats", type=int, help="timed repetitions per query (default 15)")
    parser.add_argument("--warmup", type=int, default=2, help="warm-up queries (default 2)")
    add_data_options(parser)


def _int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 3,5,7, got {text!r}") from None
    if not values or min(values) < 3:
        raise argparse.ArgumentTypeError("MPyC needs at least 3 parties")
    return values


def config(args: argparse.Namespace) -> Config:
    quick = bool(args.quick)
    cfg = Config(
        parties=args.parties or ((3, 5) if quick else (3, 5, 7)),
        patients=args.patients or (20_000 if quick else 1_000_000),
        repeats=args.repeats or (5 if quick else 15),
        warmup=max(0, args.warmup),
        seed=args.seed,
        data_root=args.data_dir.resolve(),
        quick=quick,
    )
    if cfg.patients < 1 or cfg.repeats < 1:
        raise SystemExit("--patients and --repeats must be positive")
    return cfg


def run(args: argparse.Namespace) -> int:
    cfg = config(args)
    runs = [measure(cfg, k) for k in cfg.parties]
    return print_report(cfg, runs)
