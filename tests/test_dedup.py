"""Deduplicated joint counts (`dedup = yes`): link ids from every source, keyed tokens,
the linkage key file, synthetic overlap, the secure distinct count on MPyC's arithmetic
(fast tier), and one real federation (slow tier) against the pooled distinct count
computed here from the plaintext files with pandas.

The federation runs the shipped template with its constant dedup_bound lowered to
BOUND (a copy, approved by the parties like any template), so the jobs take seconds."""

from __future__ import annotations

import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from smpc_ehr.analyses.common.local_checks import JOINT_MESSAGE
from smpc_ehr.analyses.statistics.count import ANALYSIS
from smpc_ehr.analyses.statistics.count.dedup import releasable
from smpc_ehr.cli import main
from smpc_ehr.client import Client
from smpc_ehr.client.client import JobFailed
from smpc_ehr.config.linkage_key import new_linkage_key, read_linkage_key
from smpc_ehr.config.party import load_party_config
from smpc_ehr.data.cohort import CohortFilter, cohort_members
from smpc_ehr.data.linkage import TOKEN_BITS, link_token, with_link_tokens
from smpc_ehr.data.loader import load_party_data
from smpc_ehr.data.sources import has_link_ids
from smpc_ehr.data.synth import generate_federation
from smpc_ehr.errors import ConfigError, TemplateError
from smpc_ehr.local.federation import LocalFederation, down, up
from smpc_ehr.securemath.distinct import distinct_and_shared, power_rows, token_polynomial
from smpc_ehr.study.template import load_template
from tests.federations import COUNT_TEMPLATE
from tests.test_config import PARTY, federation, write
from tests.test_mpyc_sec_param import restore_mpyc_globals, run_alone  # noqa: F401 (a fixture)

HOSPITALS = ("hospital-1", "hospital-2", "hospital-3")
BOUND = 40
THRESHOLD = 11
KEY = bytes(range(32))


def make_overlap(out: Path, fmt: str = "csv") -> Path:
    """3 small hospitals; half the diabetes (E11) patients also at one or two others."""
    generate_federation(HOSPITALS, 60, 11, out, fmt=fmt, overlap=0.6, overlap_codes=("E11",))
    return out


def pooled(data: Path, codes: tuple[str, ...]) -> tuple[int, int]:
    """(distinct link ids, link ids at more than one hospital) of the cohort, pooled."""
    per = []
    for hospital in HOSPITALS:
        patients = pd.read_csv(data / hospital / "patients.csv", dtype=str)
        conditions = pd.read_csv(data / hospital / "conditions.csv", dtype=str)
        ids = set(conditions[conditions["code"].str.startswith(codes)]["patient_id"])
        per.append(set(patients[patients["patient_id"].isin(ids)]["link_id"]))
    everyone = set().union(*per)
    return len(everyone), sum(1 for link in everyone if sum(link in s for s in per) > 1)


def pooled_by_sex(data: Path, codes: tuple[str, ...]) -> dict[str, int]:
    """Distinct link ids of the cohort per sex, each with the sex recorded at the first
    hospital (in roster order: the folders' sorted names) that has the patient."""
    return pooled_release(data, codes, by_sex=True)["distinct"]


def pooled_release(data: Path, codes: tuple[str, ...], by_sex: bool = False) -> dict[str, Any]:
    """From the plaintext files: per cell (one cell "", or F/M/U) the plain count (each
    hospital's cohort patients in its own cell), the distinct link ids (in the cell of
    the first hospital that has them), the records beyond one per patient (D = plain -
    distinct); the shared link ids and E = D - shared (the patients at three hospitals);
    and what the release rule shows: a distinct count at or above the threshold whose
    |D| is 0 or at least the threshold, the shared count likewise with E."""
    cells = ("F", "M", "U") if by_sex else ("",)
    plain = dict.fromkeys(cells, 0)
    first: dict[str, str] = {}
    seen: dict[str, int] = {}
    for hospital in HOSPITALS:
        patients = pd.read_csv(data / hospital / "patients.csv", dtype=str)
        conditions = pd.read_csv(data / hospital / "conditions.csv", dtype=str)
        ids = set(conditions[conditions["code"].str.startswith(codes)]["patient_id"])
        for _, row in patients[patients["patient_id"].isin(ids)].iterrows():
            cell = row["sex"] if by_sex else ""
            plain[cell] += 1
            first.setdefault(row["link_id"], cell)
            seen[row["link_id"]] = seen.get(row["link_id"], 0) + 1
    distinct = {c: sum(v == c for v in first.values()) for c in cells}
    extra = {c: plain[c] - distinct[c] for c in cells}
    shared = sum(k > 1 for k in seen.values())
    beyond = sum(extra.values()) - shared

    def small(x: int) -> bool:
        return 1 <= abs(x) < THRESHOLD

    shown = {c: distinct[c] if distinct[c] >= THRESHOLD and not small(extra[c]) else None
             for c in cells}  # fmt: skip
    shown_shared = shared if shared >= THRESHOLD and not small(beyond) else None
    return {"plain": plain, "distinct": distinct, "extra": extra, "shared": shared,
            "beyond": beyond, "shown": shown, "shown_shared": shown_shared}  # fmt: skip


# ------------------------------------------------------------------ fast tier


def test_tokens_are_keyed_63_bit_and_zero_for_no_link() -> None:
    token = link_token(KEY, "NHN0000000001")
    assert 1 <= token <= 2**TOKEN_BITS
    assert token == link_token(KEY, "NHN0000000001")
    assert token != link_token(bytes(32), "NHN0000000001")  # another key, another token
    assert link_token(KEY, "") == 0


def test_the_linkage_key_file(tmp_path: Path) -> None:
    path = new_linkage_key(tmp_path / "linkage.key")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(read_linkage_key(path)) == 32
    with pytest.raises(ConfigError, match="exists"):
        new_linkage_key(path)
    (tmp_path / "bad.key").write_text("abc\n")
    with pytest.raises(ConfigError, match=r"bad\.key"):
        read_linkage_key(tmp_path / "bad.key")


def test_a_token_polynomial_is_zero_exactly_at_the_tokens() -> None:
    modulus = 2**89 - 1  # a Mersenne prime
    tokens = [5, 2**63, 12345678901234567]
    coefficients = token_polynomial(tokens, modulus, 6)
    assert len(coefficients) == 7 and coefficients[4:] == [0, 0, 0]
    values = [*tokens, 6, 2**63 + 1, 0]
    powers = power_rows(values, modulus, 6)
    at = [
        sum(c * x for c, x in zip(coefficients, powers[7 * j : 7 * j + 7], strict=True)) % modulus
        for j in range(len(values))
    ]
    assert [v == 0 for v in at] == [True, True, True, False, False, False]
    assert token_polynomial([], modulus, 2) == [1, 0, 0]  # no tokens: never zero


def test_the_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "linkage.key"
    assert main(["linkage-key", "new", "--out", str(key)]) == 0
    assert len(read_linkage_key(key)) == 32 and "to no one else" in capsys.readouterr().out
    assert main(["linkage-key", "new", "--out", str(key)]) == 2  # never overwritten
    assert "exists" in capsys.readouterr().err
    out = tmp_path / "synth"
    argv = ["synth", "--parties", "a,b,c", "--patients", "40", "--out", str(out)]
    assert main([*argv, "--overlap", "0.5", "--format", "fhir"]) == 0
    assert all(has_link_ids(out / party) for party in "abc")


def test_the_party_config_names_the_linkage_key(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    federation(tmp_path)
    text = PARTY.replace(
        'data = "data/hospital-a"\n', 'data = "data/hospital-a"\nlinkage_key = "linkage.key"\n'
    )
    path = write(tmp_path / "hospital-a.toml", text)
    with pytest.raises(ConfigError, match="linkage key not found"):
        load_party_config(path)
    key = new_linkage_key(tmp_path / "linkage.key")
    assert load_party_config(path).linkage_key == key
    assert "chmod 600" not in caplog.text
    key.chmod(0o644)  # readable by others: a warning, as for a private key
    load_party_config(path)
    assert "chmod 600" in caplog.text


@pytest.mark.parametrize("fmt", ["parquet", "omop", "fhir"])
def test_every_format_carries_the_same_link_ids(tmp_path: Path, fmt: str) -> None:
    csv, other = make_overlap(tmp_path / "csv"), make_overlap(tmp_path / fmt, fmt)
    cohort = CohortFilter(codes=("E11",))
    for hospital in HOSPITALS:
        assert has_link_ids(other / hospital)
        want, got = (with_link_tokens(load_party_data(d / hospital), KEY) for d in (csv, other))
        assert got.link_id is None and got.link_token is not None
        tokens = [set(np.asarray(d.link_token)[cohort_members(d, cohort)[0]]) for d in (want, got)]
        assert tokens[0] == tokens[1] and len(tokens[0]) > 10


def test_synth_overlap_shares_link_ids_and_leaves_link_ids_out_of_features(
    tmp_path: Path,
) -> None:
    data = make_overlap(tmp_path)
    distinct, shared = pooled(data, ("E11",))
    assert shared > THRESHOLD and distinct > THRESHOLD
    loaded = load_party_data(data / HOSPITALS[0])
    assert "link_id" not in loaded.columns() and loaded.link_id is not None
    plain = tmp_path / "plain"
    generate_federation(HOSPITALS, 60, 11, plain)
    assert not has_link_ids(plain / HOSPITALS[0])


@pytest.mark.usefixtures("restore_mpyc_globals")
def test_the_secure_distinct_count_on_mpyc_arithmetic() -> None:
    # Three simulated parties (one runtime inputs them all): large tokens near 2^63,
    # overlaps of two and three parties, unlinked patients, the padding rule, and a
    # shared patient whose cell differs between hospitals (the first hospital's counts).
    rng = np.random.default_rng(5)
    pool = [int(t) for t in rng.integers(2**62, 2**63, size=30)]
    sets = [pool[:12], pool[8:20], [*pool[0:3], *pool[18:25]]]
    cell_of = [{t: t % 3 for t in mine} for mine in sets]  # 3 cells
    cell_of[1] = {t: (t + 1) % 3 for t in sets[1]}  # hospital 2 records other cells
    unlinked = [[2, 0, 1], [0, 0, 0], [1, 3, 1]]
    first: dict[int, int] = {}
    for mine, cells in zip(sets, cell_of, strict=True):
        for token in mine:
            first.setdefault(token, cells[token])
    truth = [sum(u[c] for u in unlinked) + sum(v == c for v in first.values()) for c in range(3)]
    shared = sum(1 for t in first if sum(t in s for s in sets) > 1)
    bound, pad = 16, 2**TOKEN_BITS + 1

    async def program(ops: Any) -> tuple[list[int], int]:
        powers, polynomials, rows, counts = [], [], [], []
        modulus = ops.field_modulus
        for p, mine in enumerate(sets):
            start = pad + p * bound
            padded = [*mine, *range(start + len(mine), start + bound)]
            (secret,) = ops.input_field_elements(power_rows(padded, modulus, bound), modulus)
            powers.append(ops.reshape(secret, (bound, bound + 1)))
            (secret,) = ops.input_field_elements(token_polynomial(mine, modulus, bound), modulus)
            polynomials.append(secret)
            onehot = np.zeros((bound, 3), dtype=np.int64)
            onehot[np.arange(len(mine)), [cell_of[p][t] for t in mine]] = 1
            (flat,) = ops.input_ints([int(v) for v in onehot.reshape(-1)], 32)
            rows.append(ops.reshape(flat, (bound, 3)))
            counts.append(ops.input_ints(unlinked[p], 32)[0])
        distinct, together = distinct_and_shared(ops, counts, powers, polynomials, rows)
        opened = [await ops.reveal(v) for v in (distinct, together)]
        return [int(v) for v in opened[0]], int(opened[1][0])

    assert run_alone(program) == (truth, shared)
    assert shared > 0 and len(set(truth)) > 1


@pytest.mark.usefixtures("restore_mpyc_globals")
def test_the_release_rule_closes_each_subtraction_on_mpyc_arithmetic() -> None:
    """`releasable` on crafted totals (threshold 11), against the rule written out: a
    distinct cell is shown at >= 11 unless |plain - distinct| is 1..10; the shared count
    at >= 11 unless E = sum(plain - distinct) - shared is 1..10."""
    cases = [  # (distinct per cell, shared, plain per cell)
        ([40, 30, 12], 20, [40, 55, 30]),  # D 0, 25, 18; E 43 - 20 = 23: all shown
        ([40, 30, 12], 5, [45, 30, 12]),  # D 5 (hides cell 0); shared under 11 anyway
        ([40, 30, 5], 12, [40, 42, 11]),  # D 0, 12, 6: cell 2 under 11 anyway; E 6
        ([40, 30, 12], 11, [40, 52, 3]),  # D 0, 22, -9 (a cell that differs): hides cell 2;
        # E = 13 - 11 = 2 hides the shared count
    ]

    def rule(distinct: list[int], shared: int, plain: list[int]) -> list[bool]:
        extra = [p - d for p, d in zip(plain, distinct, strict=True)]
        beyond = sum(extra) - shared
        cells = [d >= 11 and not 1 <= abs(x) < 11 for d, x in zip(distinct, extra, strict=True)]
        return [*cells, shared >= 11 and not 1 <= beyond < 11]  # E >= 0: sum(k - 1) >= shared

    async def program(ops: Any) -> list[list[int]]:
        out = []
        for distinct, shared, plain in cases:
            d, s, p = (ops.input_ints(v, 32)[0] for v in (distinct, [shared], plain))
            out.append([int(b) for b in await ops.reveal(releasable(ops, d, s, p, 11))])
        return out

    got = run_alone(program)
    assert got == [[int(b) for b in rule(*case)] for case in cases]
    assert got[0] == [1, 1, 1, 1] and got[1][0] == 0 and got[2][3] == 0 and got[3] == [1, 1, 0, 0]


def test_dedup_refuses_epsilon_and_crypten() -> None:
    template = load_template(COUNT_TEMPLATE)
    params = template.bind({"codes": "E84", "dedup": "yes"})
    ANALYSIS.validate(params)
    with pytest.raises(TemplateError, match="mpyc backend only"):
        ANALYSIS.validate_backend(params, "crypten")
    ANALYSIS.validate(template.bind({"codes": "E84", "dedup": "yes", "by": "sex"}))
    bad = template.bind({"codes": "E84", "dedup": "yes", "epsilon": "1"})
    with pytest.raises(TemplateError, match="dedup"):
        ANALYSIS.validate(bad)


# ------------------------------------------------------------------ a real federation


@pytest.fixture(scope="module")
def dedup_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_overlap(tmp_path_factory.mktemp("dedup_data"))


@pytest.fixture(scope="module")
def small_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("dedup_protocols")
    text = COUNT_TEMPLATE.read_text(encoding="utf-8")
    constant = "default = 1000\nmin = 1000\nmax = 1000\n"
    assert constant in text
    path = folder / COUNT_TEMPLATE.name
    path.write_text(text.replace(constant, f"default = {BOUND}\nmin = {BOUND}\nmax = {BOUND}\n"))
    return path


@pytest.fixture(scope="module")
def fed_dedup(
    dedup_data: Path, small_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalFederation]:
    state = tmp_path_factory.mktemp("fed_dedup")
    federation = up(dedup_data, state, protocols=small_template.parent, timeout=90.0)
    yield federation
    down(state)


HOPS_BOUND = 180
"""Measured 162-166 on 2026-12-06 (3 x 60 patients, bound 40, 2 cores; 142-160 at the
shipped bound of 1,000 in `bench.py dedup`: the count does not grow with the bound),
most of them the Fermat zero test's chain of ~74 squarings (about two hops each as
MPyC schedules them). Lower it when a change removes rounds."""


def test_dedup_count_equals_the_pooled_distinct_count(
    fed_dedup: LocalFederation, dedup_data: Path, small_template: Path
) -> None:
    assert (fed_dedup.state_dir / "certs" / "linkage.key").is_file()  # local up made it
    distinct, shared = pooled(dedup_data, ("E11",))
    assert distinct >= THRESHOLD and shared >= THRESHOLD
    with Client.from_state(fed_dedup.state_dir) as client:
        plain = client.run(small_template, {"codes": "E11"}).result
        job = client.run(small_template, {"codes": "E11", "dedup": "yes"})
        none = client.run(small_template, {"codes": "Q99.9", "dedup": "yes"}).result
        table = client.run(small_template, {"codes": "E11", "dedup": "yes", "by": "sex"}).result
    want = pooled_release(dedup_data, ("E11",))
    assert want["distinct"][""] == distinct and want["shared"] == shared
    assert job.result == {
        "count": want["shown"][""],
        "suppressed": want["shown"][""] is None,
        "shared": want["shown_shared"],
        "dedup": True,
        "threshold": THRESHOLD,
    }
    assert want["shown"][""] == distinct  # this cohort's numbers are released
    assert plain["count"] == want["plain"][""] > distinct  # shared patients counted again
    assert none == {
        "count": None,
        "suppressed": True,
        "shared": None,
        "dedup": True,
        "threshold": THRESHOLD,
    }
    assert job.cost is not None and 0 < job.cost["hops"] <= HOPS_BOUND, job.cost
    by_sex = pooled_release(dedup_data, ("E11",), by_sex=True)
    assert sum(by_sex["distinct"].values()) == distinct
    assert (
        by_sex["distinct"]["U"] < THRESHOLD <= min(by_sex["distinct"]["F"], by_sex["distinct"]["M"])
    )
    assert table["shared"] == by_sex["shown_shared"] and table["by"] == ["sex"]
    for cell in table["cells"]:
        assert cell["count"] == by_sex["shown"][cell["sex"]], cell


def test_the_plain_count_minus_the_dedup_count_never_gives_a_small_number(
    fed_dedup: LocalFederation, dedup_data: Path, small_template: Path
) -> None:
    """The attack: plain count - deduplicated count = the records beyond one per patient,
    and that minus the shared count = the patients at three hospitals. For a cohort
    whose shared patients are few (E78), each such difference that the released numbers
    allow is 0 or at least the threshold; what would give a small one is suppressed."""
    want = pooled_release(dedup_data, ("E78",))
    assert want["distinct"][""] >= THRESHOLD and 1 <= want["extra"][""] < THRESHOLD
    with Client.from_state(fed_dedup.state_dir) as client:
        plain = client.run(small_template, {"codes": "E78"}).result
        dedup = client.run(small_template, {"codes": "E78", "dedup": "yes"}).result
    assert plain["count"] == want["plain"][""] >= THRESHOLD  # the plain count is released
    assert dedup["count"] is None and dedup["suppressed"] is True  # so this one is not
    assert dedup["shared"] == want["shown_shared"] is None
    released = [n for n in (plain["count"], dedup["count"], dedup["shared"]) if n is not None]
    for a in released:
        for b in released:
            assert not 1 <= abs(a - b) < THRESHOLD, (a, b)


def test_a_cohort_above_the_bound_is_refused_without_a_hospital_name(
    fed_dedup: LocalFederation, dedup_data: Path, small_template: Path
) -> None:
    # Diabetes or hypertension: more linked patients than BOUND at some hospital. The
    # refusal is the joint one: it names no hospital and no count.
    with Client.from_state(fed_dedup.state_dir) as client, pytest.raises(JobFailed) as failed:
        client.run(small_template, {"codes": "E11,I10", "dedup": "yes"})
    message = str(failed.value)
    assert JOINT_MESSAGE in message
    assert not re.search(r"hospital-\d", message)
    assert not re.search(r"\d{2,}", message.replace(JOINT_MESSAGE, ""))
