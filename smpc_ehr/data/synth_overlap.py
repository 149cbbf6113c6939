"""Overlapping synthetic populations: rare-disease patients seen at several hospitals.

With `smpc-ehr synth --overlap S`, every patient gets a linkage identifier (`link_id`,
a made-up national number "NHN" + 10 digits, unique in the federation), and each
rare-disease patient (any E84 or lysosomal code: `RARE_CODES`) is, with probability
S, also a patient of one other hospital, or of two others when the federation has
three or more (each with probability 1/2): a copy of the patient's row (sex, birth
date and measurements alike) under a new local patient id, with the same link id and
copies of all the patient's condition rows. So a joint count over hospitals counts
such a patient two or three times and a deduplicated one once (docs/data.md).

The draws come from a stream of their own (the seed's `OVERLAP_STREAM` child), so
the hospitals' own patients are the same with and without overlap.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from smpc_ehr.data import synth_model as m

RARE_CODES = (*m.CF_CODES, *m.LYSOSOMAL)
"""The diagnoses whose patients may be shared between hospitals."""
OVERLAP_STREAM = 17
"""The spawn key of the overlap's random stream (any number no other stream uses)."""

Tables = dict[str, pa.Table]


def add_overlap(
    parties: dict[str, Tables], share: float, seed: int, codes: Sequence[str] = RARE_CODES
) -> dict[str, Any]:
    """Give every patient a link id and copy a `share` of each hospital's patients with
    a code starting with one of `codes` (the rare diseases; tests may name a common
    code to have many) to one or two other hospitals, in place; returns what
    truth.json states."""
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"overlap must be a share between 0 and 1, got {share!r}")
    rng = np.random.Generator(
        np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(OVERLAP_STREAM,)))
    )
    names = list(parties)
    start = 0
    for tables in parties.values():
        n = tables["patients"].num_rows
        links = [f"NHN{k:010d}" for k in range(start + 1, start + n + 1)]
        tables["patients"] = tables["patients"].append_column("link_id", pa.array(links))
        start += n
    copies: dict[str, list[tuple[str, int]]] = {name: [] for name in names}
    for source, tables in parties.items():
        for row in _patients_with(tables, tuple(codes)):
            if rng.random() >= share or len(names) < 2:
                continue
            others = [name for name in names if name != source]
            extra = 2 if len(others) >= 2 and rng.random() < 0.5 else 1
            for target in rng.choice(len(others), size=extra, replace=False):
                copies[others[int(target)]].append((source, row))
    originals = {name: dict(tables) for name, tables in parties.items()}
    for target, wanted in copies.items():
        for number, (source, row) in enumerate(wanted, start=1):
            _copy_patient(originals[source], parties[target], row, f"{target}-L{number:06d}")
    shared = sum(len(w) for w in copies.values())
    return {"share": share, "codes": list(codes), "copies": shared}


def _patients_with(tables: Tables, codes: tuple[str, ...]) -> list[int]:
    """Row numbers (in patients) of the patients with a condition row of `codes`."""
    ids = tables["patients"].column("patient_id").to_pylist()
    conditions = tables["conditions"]
    rows = zip(
        conditions.column("patient_id").to_pylist(),
        conditions.column("code").to_pylist(),
        strict=True,
    )
    chosen = {pid for pid, code in rows if code.startswith(codes)}
    return [i for i, pid in enumerate(ids) if pid in chosen]


def _copy_patient(source: Tables, target: Tables, row: int, new_id: str) -> None:
    """Append patient `row` of `source` (and all its condition rows) to `target` under
    the local id `new_id`, keeping its link id."""
    patient = source["patients"].slice(row, 1)
    pid = patient.column("patient_id")[0].as_py()
    renamed = pa.array([new_id])
    patient = patient.set_column(0, "patient_id", renamed)
    target["patients"] = pa.concat_tables(
        [target["patients"], patient.cast(target["patients"].schema)]
    )
    conditions = source["conditions"]
    mine = [i for i, p in enumerate(conditions.column("patient_id").to_pylist()) if p == pid]
    rows = conditions.take(pa.array(mine, type=pa.int64()))
    rows = rows.set_column(0, "patient_id", pa.array([new_id] * len(mine)))
    target["conditions"] = pa.concat_tables(
        [target["conditions"], rows.cast(target["conditions"].schema)]
    )
    truth = source["truth_phenotypes"]
    index = truth.column("patient_id").to_pylist().index(pid)
    phenotype = truth.slice(index, 1).set_column(0, "patient_id", renamed)
    target["truth_phenotypes"] = pa.concat_tables(
        [target["truth_phenotypes"], phenotype.cast(target["truth_phenotypes"].schema)]
    )
