"""Synthetic federations of hospital EHR data with a known ground truth.

``generate_federation`` writes one data folder per party (the format the loader reads),
a ``truth_phenotypes.csv`` beside each, and ``truth.json`` with every generating
parameter, so analyses run under MPC can be checked against what was planted. Output
is byte-for-byte reproducible for the same arguments; the model is in synth_model.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from smpc_ehr.data import synth_events, synth_survival
from smpc_ehr.data import synth_model as m
from smpc_ehr.data.cohort import DEFAULT_AS_OF, age_in_years
from smpc_ehr.data.duckdb_source import write_duckdb
from smpc_ehr.data.fhir import CONDITION_FILE, PATIENT_FILE, SYNTHETIC_LINK_SYSTEM, write_fhir
from smpc_ehr.data.fhir_dates import EPISODE_FILE
from smpc_ehr.data.omop import write_omop
from smpc_ehr.data.records import SEXES
from smpc_ehr.data.sources import SOURCE_FILE
from smpc_ehr.data.synth_overlap import RARE_CODES, add_overlap

_PARTY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
FORMATS = ("csv", "parquet", "omop", "fhir", "duckdb")
"""What `generate_federation` writes per party: the CSV or Parquet files, an OMOP CDM
5.4 SQLite file (`OMOP_FILE`), or FHIR R4 NDJSON (Patient, Condition, Observation,
Encounter, EpisodeOfCare), the last two with a `source.toml` mapping the features and the
outcome. Every format carries the same survival dates (`synth_survival`)."""
OMOP_FILE = "cdm.sqlite"
DUCKDB_FILE = "ehr.duckdb"
_AS_OF = np.datetime64(DEFAULT_AS_OF, "D")


@dataclass(frozen=True)
class FederationTruth:
    """What was planted in a synthetic federation; ``truth.json`` holds the same fields."""

    seed: int
    as_of: str
    fmt: str
    party_ids: tuple[str, ...]
    sizes: dict[str, int]
    roles: dict[str, str]
    lsd_enrichment: float
    phenotype_mix: dict[str, list[float]]
    phenotypes: dict[str, Any]
    readmit_model: dict[str, Any]
    prevalence: dict[str, Any]
    missing_rates: dict[str, float]
    overlap: dict[str, Any] | None = None
    """With `--overlap`: the share and number of rare-disease patients copied to other
    hospitals (synth_overlap.py); None without."""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def load(cls, path: Path) -> FederationTruth:
        """Read a truth.json written by generate_federation."""
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
        raw["party_ids"] = tuple(raw["party_ids"])
        return cls(**raw)


def generate_federation(
    party_ids: Sequence[str],
    patients: int,
    seed: int,
    out: Path,
    *,
    sizes: Sequence[int] | None = None,
    fmt: str = "csv",
    overlap: float | None = None,
    overlap_codes: Sequence[str] = RARE_CODES,
) -> FederationTruth:
    """Write a synthetic federation to ``out`` and return its ground truth.

    ``patients`` is the mean party size; sizes vary 0.5x-1.5x (from the seed) and sum
    to ``len(party_ids) * patients`` unless ``sizes`` gives them explicitly. With
    ``overlap`` (a share, 0 included), patients get link ids and that share of the
    rare-disease patients is also seen at other hospitals (synth_overlap.py); the
    sizes then count each hospital's own patients, before the copies.
    """
    ids = _check_args(party_ids, patients, seed, sizes, fmt)
    fed_seq, *party_seqs = np.random.SeedSequence(seed).spawn(1 + len(ids))
    fed_rng = np.random.Generator(np.random.PCG64(fed_seq))
    counts = (
        list(sizes) if sizes is not None else _split_sizes(fed_rng, len(ids) * patients, len(ids))
    )
    enrichment = float(fed_rng.uniform(*m.LSD_ENRICHMENT_RANGE))
    mixes = np.exp(fed_rng.normal(0.0, 0.2, size=(len(ids), len(m.PHENOTYPES))))
    roles = [m.ROLE_ORDER[i] if i < len(m.ROLE_ORDER) else "general" for i in range(len(ids))]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    parties, rngs = {}, {}
    for pid, n, role, mix, seq in zip(ids, counts, roles, mixes, party_seqs, strict=True):
        rngs[pid] = np.random.Generator(np.random.PCG64(seq))
        factor = enrichment if role == "referral" else 1.0
        parties[pid] = _generate_party(rngs[pid], pid, int(n), role, mix, factor)
    shared = None if overlap is None else add_overlap(parties, overlap, seed, overlap_codes)
    for index, (pid, tables) in enumerate(parties.items()):
        rng = synth_survival.survival_rng(seed, index)  # own stream: others stay the seed's
        tables["patients"] = synth_survival.with_event_dates(
            tables["patients"], tables["conditions"], rng, _AS_OF
        )
        _write_party(out / pid, tables, fmt)
        if fmt in ("omop", "fhir"):  # drawn last: the CSV values stay those of the seed
            _write_events(out / pid, tables["patients"], fmt, rngs[pid])
    truth = _truth(seed, fmt, ids, counts, roles, enrichment, mixes)
    if shared is not None:
        truth = replace(truth, overlap=shared)
    (out / "truth.json").write_text(truth.to_json(), encoding="utf-8")
    return truth


def _check_args(
    party_ids: Sequence[str], patients: int, seed: int, sizes: Sequence[int] | None, fmt: str
) -> list[str]:
    ids = list(party_ids)
    if not ids:
        raise ValueError("need at least one party id")
    for pid in ids:
        if not isinstance(pid, str) or not _PARTY_ID.fullmatch(pid):
            raise ValueError(f"party id {pid!r} is not usable as a folder name")
    if len(set(ids)) != len(ids):
        raise ValueError("party ids must be unique")
    if isinstance(patients, bool) or not isinstance(patients, int) or patients < 1:
        raise ValueError(f"patients must be a positive integer, got {patients!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if sizes is not None and (len(sizes) != len(ids) or any(int(s) < 0 for s in sizes)):
        raise ValueError(f"sizes must give one non-negative size per party, got {sizes!r}")
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {', '.join(FORMATS)}, got {fmt!r}")
    return ids


def _split_sizes(rng: np.random.Generator, total: int, k: int) -> list[int]:
    """Party sizes of relative weight 0.5-1.5 summing exactly to total (largest remainder)."""
    share = rng.uniform(0.5, 1.5, size=k)
    exact = total * share / share.sum()
    base = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - base), kind="stable")
    base[order[: total - int(base.sum())]] += 1
    return [int(s) for s in base]


def _generate_party(
    rng: np.random.Generator, pid: str, n: int, role: str, mix: np.ndarray, lsd_factor: float
) -> dict[str, pa.Table]:
    target_age = rng.choice(m.MAX_AGE + 1, size=n, p=m.age_weights(role))
    back = np.floor((target_age + rng.random(n)) * 365.2425).astype(np.int64)
    birth = _AS_OF - back.astype("timedelta64[D]")
    age = age_in_years(birth, DEFAULT_AS_OF).astype(np.float64)
    sex = np.asarray(SEXES)[rng.choice(len(SEXES), size=n, p=[m.SEX_PROBS[s] for s in SEXES])]
    male = sex == "M"
    cum = np.cumsum(m.phenotype_probs(age, mix), axis=1)
    phenotype = (rng.random(n)[:, None] > cum[:, :-1]).sum(axis=1)
    feat = m.true_features(rng, age, male, phenotype)
    has = {code: rng.random(n) < p for code, p in m.common_condition_probs(age, male, feat).items()}
    for code, prev in m.RARE_PREVALENCE.items():
        factor = lsd_factor if code in m.LYSOSOMAL else 1.0
        has[code] = rng.random(n) < prev * factor
    readmit = _readmit(rng, age, male, feat, has)
    cond_patient, cond_code = _condition_rows(rng, has, age)
    onset = _onsets(rng, birth[cond_patient], cond_code)
    cond_patient, cond_code, onset = _add_duplicates(rng, cond_patient, cond_code, onset)
    order = np.argsort(cond_patient, kind="stable")
    onset[rng.random(len(onset)) < m.ONSET_MISSING_RATE] = np.datetime64("NaT")

    width = max(7, len(str(n)))
    numbers = pc.cast(pa.array(np.arange(1, n + 1)), pa.string())
    ids = pc.binary_join_element_wise(f"{pid}-", pc.utf8_lpad(numbers, width, "0"), "")
    columns: dict[str, pa.Array] = {
        "patient_id": ids,
        "sex": pa.array(sex),
        "birth_date": pa.array(birth),
    }
    for name, values in feat.items():
        columns[name] = pa.array(values, mask=rng.random(n) < m.MISSING_RATES[name])
    columns["readmit_30d"] = pa.array(
        readmit.astype(np.int8), mask=rng.random(n) < m.MISSING_RATES["readmit_30d"]
    )
    for name, values in m.extra_features(rng, age, male, phenotype, feat).items():
        columns[name] = pa.array(values, mask=rng.random(n) < m.EXTRA_MISSING_RATES[name])
    conditions = {
        "patient_id": ids.take(pa.array(cond_patient[order])),
        "code": pa.array(cond_code[order]),
        "onset_date": pa.array(onset[order]),
    }
    truth = {"patient_id": ids, "phenotype": pa.array(phenotype.astype(np.int8))}
    return {
        "patients": pa.table(columns),
        "conditions": pa.table(conditions),
        "truth_phenotypes": pa.table(truth),
    }


def _readmit(
    rng: np.random.Generator,
    age: np.ndarray,
    male: np.ndarray,
    feat: dict[str, np.ndarray],
    has: dict[str, np.ndarray],
) -> np.ndarray:
    """Draw readmission from the planted logistic model (terms as in truth.json)."""
    flags = {"diabetes": has["E11.9"], "ckd": has["N18.3"], "heart_failure": has["I50.9"]}
    values = {"age": age, "male": male, **feat, **flags}
    eta = np.full(len(age), m.READMIT_INTERCEPT)
    for t in m.READMIT_TERMS:
        eta += t.coef * (values[t.name].astype(np.float64) - t.center) / t.scale
    return rng.random(len(age)) < m.sigmoid(eta)


def _condition_rows(
    rng: np.random.Generator, has: dict[str, np.ndarray], age: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """One row per (patient, diagnosis); cystic fibrosis patients get 1-2 E84 codes."""
    patients = [np.flatnonzero(flag) for flag in has.values()]
    codes = [np.full(len(p), code) for code, p in zip(has, patients, strict=True)]
    cf = np.flatnonzero(rng.random(len(age)) < m.cf_prevalence(age))
    cf_codes = np.asarray(list(m.CF_CODES))
    primary = rng.choice(len(cf_codes), size=len(cf), p=list(m.CF_CODES.values()))
    second = rng.random(len(cf)) < m.CF_SECOND_CODE_RATE
    other = (primary + 1 + rng.integers(0, len(cf_codes) - 1, size=len(cf))) % len(cf_codes)
    patients += [cf, cf[second]]
    codes += [cf_codes[primary], cf_codes[other[second]]]
    return np.concatenate(patients), np.concatenate(codes)


def _onsets(rng: np.random.Generator, birth: np.ndarray, code: np.ndarray) -> np.ndarray:
    """Onset dates: congenital diseases soon after birth, others in the last 25 years."""
    lookback = _AS_OF - np.timedelta64(round(m.ONSET_LOOKBACK_YEARS * 365.2425), "D")
    lo = np.maximum(birth, lookback)
    congenital = np.isin(code, [*m.CF_CODES, *m.LYSOSOMAL])
    early = np.minimum(birth + np.timedelta64(3 * 365, "D"), _AS_OF)
    lo = np.where(congenital, birth, lo)
    hi = np.where(congenital, early, _AS_OF)
    span = (hi - lo).astype(np.int64)
    return lo + np.floor(rng.random(len(code)) * (span + 1)).astype("timedelta64[D]")


def _add_duplicates(
    rng: np.random.Generator, patient: np.ndarray, code: np.ndarray, onset: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Repeat a few rows (same patient and code, later onset), as real extracts do."""
    dup = np.flatnonzero(rng.random(len(code)) < m.DUPLICATE_ROW_RATE)
    later = onset[dup] + rng.integers(0, 730, size=len(dup)).astype("timedelta64[D]")
    return (
        np.concatenate([patient, patient[dup]]),
        np.concatenate([code, code[dup]]),
        np.concatenate([onset, np.minimum(later, _AS_OF)]),
    )


def _write_party(folder: Path, tables: dict[str, pa.Table], fmt: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for stale in ("patients.csv", "patients.parquet", "conditions.csv", "conditions.parquet"):
        if not stale.endswith(fmt):
            (folder / stale).unlink(missing_ok=True)
    stale_sources = (
        SOURCE_FILE,
        OMOP_FILE,
        DUCKDB_FILE,
        PATIENT_FILE,
        CONDITION_FILE,
        EPISODE_FILE,
    )
    for stale in (*stale_sources, *synth_events.FILES):
        (folder / stale).unlink(missing_ok=True)
    # persons and conditions here; features and the outcome in _write_events
    linked = "link_id" in tables["patients"].column_names
    if fmt == "omop":
        write_omop(folder / OMOP_FILE, tables["patients"], tables["conditions"])
        source = f'kind = "omop"\nurl = "sqlite:///{OMOP_FILE}"\n'
        source += 'link_column = "person_source_value"\n' if linked else ""
        (folder / SOURCE_FILE).write_text(source, encoding="utf-8")
    if fmt == "fhir":
        write_fhir(folder, tables["patients"], tables["conditions"])
        source = 'kind = "fhir"\n'
        source += f'link_system = "{SYNTHETIC_LINK_SYSTEM}"\n' if linked else ""
        (folder / SOURCE_FILE).write_text(source, encoding="utf-8")
    if fmt == "duckdb":
        write_duckdb(folder / DUCKDB_FILE, tables["patients"], tables["conditions"])
        source = f'kind = "duckdb"\ndatabase = "{DUCKDB_FILE}"\n'
        (folder / SOURCE_FILE).write_text(source, encoding="utf-8")
    for stem, table in tables.items():
        if fmt in ("omop", "fhir", "duckdb") and stem != "truth_phenotypes":
            continue
        if fmt == "parquet" and stem != "truth_phenotypes":
            pq.write_table(table, folder / f"{stem}.parquet")
        else:
            _write_csv(table, folder / f"{stem}.csv")


def _write_events(folder: Path, patients: pa.Table, fmt: str, rng: np.random.Generator) -> None:
    """The features and the outcome as OMOP or FHIR events, their mapping in source.toml."""
    events = synth_events.draw(rng, patients)
    if fmt == "omop":
        synth_events.write_omop_events(folder / OMOP_FILE, events)
    else:
        ids = patients.column("patient_id").to_pylist()
        synth_events.write_fhir_events(folder, events, ids)
    with (folder / SOURCE_FILE).open("a", encoding="utf-8") as out:
        out.write(synth_events.mapping_toml(patients))


def _write_csv(table: pa.Table, path: Path) -> None:
    """CSV without quotes (generated ids and codes never need them), empty cell = missing."""
    with path.open("wb") as fh:
        fh.write((",".join(table.column_names) + "\n").encode())
        pacsv.write_csv(table, fh, pacsv.WriteOptions(include_header=False, quoting_style="none"))


def _truth(
    seed: int,
    fmt: str,
    ids: list[str],
    counts: list[int],
    roles: list[str],
    enrichment: float,
    mixes: np.ndarray,
) -> FederationTruth:
    return FederationTruth(
        seed=seed,
        as_of=DEFAULT_AS_OF.isoformat(),
        fmt=fmt,
        party_ids=tuple(ids),
        sizes={pid: int(n) for pid, n in zip(ids, counts, strict=True)},
        roles=dict(zip(ids, roles, strict=True)),
        lsd_enrichment=enrichment,
        phenotype_mix={pid: [float(x) for x in mix] for pid, mix in zip(ids, mixes, strict=True)},
        phenotypes={
            "names": list(m.PHENOTYPES),
            "adult_centres": {k: list(v) for k, v in m.PHENOTYPE_CENTRES.items()},
            "base_weights": list(m.PHENOTYPE_BASE),
            "age_slope_per_decade": list(m.PHENOTYPE_AGE_SLOPE),
        },
        readmit_model={
            "outcome": "readmit_30d",
            "intercept": m.READMIT_INTERCEPT,
            "terms": [asdict(t) for t in m.READMIT_TERMS],
            "encoding": "logit P = intercept + sum(coef * (x - center) / scale); age in whole "
            "years at as_of; male = sex M; code flags = any condition row with that prefix",
        },
        prevalence={
            "rare": dict(m.RARE_PREVALENCE),
            "lysosomal_enriched_at_referral": list(m.LYSOSOMAL),
            "cystic_fibrosis_by_age": dict(m.CF_PREVALENCE_BY_AGE),
            "cystic_fibrosis_codes": dict(m.CF_CODES),
            "duplicate_row_rate": m.DUPLICATE_ROW_RATE,
            "onset_missing_rate": m.ONSET_MISSING_RATE,
        },
        missing_rates={**m.MISSING_RATES, **m.EXTRA_MISSING_RATES},
    )
