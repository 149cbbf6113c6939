"""A hospital's party config: who it is, where its key and data are, what it approves.

The policy section is the hospital's own: its small-cell threshold, the protocol
templates it approves (as files, whose canonical hashes are taken at load time, or as
hashes directly), the longest job deadline it accepts and its differential-privacy
settings (smpc_ehr.policy.privacy). The state folder holds what the party keeps between
runs (its privacy ledger); it is created when first needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from smpc_ehr.compute_threads import DEFAULT_COMPUTE_THREADS
from smpc_ehr.config._common import (
    check_identity_files,
    check_log_level,
    existing_dir,
    existing_file,
    read_identity_section,
    read_listen,
    read_log_level,
    warn_if_key_readable,
)
from smpc_ehr.config._toml import (
    Table,
    rel,
    resolve,
    toml_document,
    toml_table,
    write_text,
)
from smpc_ehr.config.roster import Roster
from smpc_ehr.errors import ConfigError, TemplateError
from smpc_ehr.policy.approval import (
    DEFAULT_MIN_CELL_COUNT,
    PartyPolicy,
    check_hash_text,
    min_cell_count_problem,
)
from smpc_ehr.policy.privacy import DEFAULT_DELTA, PrivacyPolicy
from smpc_ehr.study.template import load_template

PRIVACY_KEYS = (
    "require_dp",
    "max_epsilon_per_query",
    "epsilon_budget_per_analyst",
    "epsilon_budget_total",
    "delta",
    "budget_period",
)
"""The [policy] keys of PrivacyPolicy, in the order the writer puts them."""


DEFAULT_GOSSIP_SECONDS = 600.0
"""How often a party sends its signed audit head to the others, besides after each job."""


def default_state(base: Path, party_id: str) -> Path:
    """A party's state folder when its config names none: state/<id> beside the config."""
    return base / "state" / party_id


@dataclass(frozen=True)
class PartyConfig:
    """A validated party config; every path in it is resolved."""

    id: str
    roster: Roster
    listen: str
    key: Path
    cert: Path
    data: Path
    policy: PartyPolicy
    log_level: str
    source: Path
    state: Path
    preload_crypten: bool = False
    """Load torch and CrypTen when the party starts, not at its first CrypTen job."""
    audit_log: Path | None = None
    """This party's audit log; None: `<state>/audit/<id>.jsonl`."""
    audit_heads: Path | None = None
    """Where it keeps the other parties' signed heads; None: `<state>/audit/heads`."""
    audit_gossip_seconds: float = DEFAULT_GOSSIP_SECONDS
    """How often it sends its signed head to the other parties (also after each job)."""
    compute_threads: int = DEFAULT_COMPUTE_THREADS
    """Threads of numpy's BLAS and of torch in the party process (smpc_ehr.compute_threads)."""
    linkage_key: Path | None = None
    """The federation's linkage key file (config/linkage_key.py), with which the party
    keys its patients' link ids for deduplicated counts; None: no deduplication."""

    @property
    def audit_log_path(self) -> Path:
        return self.audit_log or self.state / "audit" / f"{self.id}.jsonl"

    @property
    def audit_heads_folder(self) -> Path:
        return self.audit_heads or self.state / "audit" / "heads"


def _read_policy(top: Table, base: Path) -> PartyPolicy:
    table = top.optional_table("policy")
    if table is None:
        return PartyPolicy()
    min_cells = table.get_int("min_cell_count", DEFAULT_MIN_CELL_COUNT)
    problem = min_cell_count_problem(min_cells)
    if problem:
        raise table.error("min_cell_count", problem)
    names: dict[str, str] = {}
    for entry in table.get_str_list("approved_protocols", ()):
        try:
            template = load_template(resolve(base, entry))
        except TemplateError as exc:
            raise table.error("approved_protocols", str(exc)) from None
        names[template.canonical_hash] = template.name
    hashes = set(names)
    for entry in table.get_str_list("approved_hashes", ()):
        try:
            hashes.add(check_hash_text(entry))
        except ConfigError as exc:
            raise table.error("approved_hashes", str(exc)) from None
    max_seconds = table.get_number("max_job_seconds", 120.0, positive=True)
    privacy = _read_privacy(table)
    allow_partial = table.get_bool("allow_partial_jobs", False)
    table.done()
    return PartyPolicy(
        min_cell_count=min_cells,
        approved_hashes=frozenset(hashes),
        approved_names=names,
        max_job_seconds=max_seconds,
        privacy=privacy,
        allow_partial_jobs=allow_partial,
    )


def _read_privacy(table: Table) -> PrivacyPolicy:
    """The DP keys of [policy]; PrivacyPolicy's own checks name the key that is wrong."""
    values = {
        "require_dp": table.get_bool("require_dp", False),
        "max_epsilon_per_query": table.get_number("max_epsilon_per_query", None),
        "epsilon_budget_per_analyst": table.get_number("epsilon_budget_per_analyst", None),
        "epsilon_budget_total": table.get_number("epsilon_budget_total", None),
        "delta": table.get_number("delta", DEFAULT_DELTA),
        "budget_period": table.get_str("budget_period", "forever"),
    }
    try:
        return PrivacyPolicy(**values)
    except ConfigError as exc:
        raise table.wrap(exc) from None


def load_party_config(path: Path | str, *, check_files: bool = True) -> PartyConfig:
    """Read and validate a party config and the roster it names.

    `check_files=False` skips the existence checks of key, cert, CA cert and data folder
    (for validating configs before certificates and data exist); approved protocol
    files are always read, since their hashes are the policy.
    """
    s = read_identity_section(path, "party")
    listen = read_listen(s.table, s.member)
    data = resolve(s.base, s.table.get_str("data"))
    state_entry = s.table.get_str("state", None)
    state = default_state(s.base, s.id) if state_entry is None else resolve(s.base, state_entry)
    preload_crypten = bool(s.table.get_bool("preload_crypten", False))
    audit_log = s.table.get_str("audit_log", None)
    audit_heads = s.table.get_str("audit_heads", None)
    gossip = s.table.get_number("audit_gossip_seconds", DEFAULT_GOSSIP_SECONDS, positive=True)
    threads = s.table.get_int("compute_threads", DEFAULT_COMPUTE_THREADS, minimum=1)
    linkage_entry = s.table.get_str("linkage_key", None)
    linkage_key = None if linkage_entry is None else resolve(s.base, linkage_entry)
    s.table.done()
    if check_files:
        check_identity_files(s.table, s.roster, s.key, s.cert)
        existing_dir(s.table, "data", data, "data")
        if linkage_key is not None:
            existing_file(s.table, "linkage_key", linkage_key, "linkage key")
            warn_if_key_readable(linkage_key)
    policy = _read_policy(s.top, s.base)
    log_level = read_log_level(s.top)
    s.top.done()
    return PartyConfig(
        id=s.id,
        roster=s.roster,
        listen=listen,
        key=s.key,
        cert=s.cert,
        data=data,
        policy=policy,
        log_level=log_level,
        source=s.path,
        state=state,
        preload_crypten=preload_crypten,
        audit_log=None if audit_log is None else resolve(s.base, audit_log),
        audit_heads=None if audit_heads is None else resolve(s.base, audit_heads),
        audit_gossip_seconds=gossip,
        compute_threads=threads,
        linkage_key=linkage_key,
    )


def write_party_config(
    path: Path | str,
    *,
    id: str,
    roster: Path | str,
    key: Path | str,
    cert: Path | str,
    data: Path | str,
    listen: str | None = None,
    min_cell_count: int = DEFAULT_MIN_CELL_COUNT,
    approved_protocols: Sequence[Path | str] = (),
    approved_hashes: Sequence[str] = (),
    max_job_seconds: float = 120.0,
    log_level: str = "INFO",
    state: Path | str | None = None,
    privacy: PrivacyPolicy | None = None,
    allow_partial_jobs: bool = False,
    audit_log: Path | str | None = None,
    linkage_key: Path | str | None = None,
) -> Path:
    """Write a party config (used by the local federation tool); returns its path.

    Absolute paths are written relative to the config's folder; relative ones are
    taken to be relative to it already, as when loading.
    """
    problem = min_cell_count_problem(min_cell_count)
    if problem:
        raise ConfigError(f"{path}: [policy] min_cell_count: {problem}")
    path = Path(path)
    base = path.parent
    party = {
        "id": id,
        "roster": rel(roster, base),
        "listen": listen,
        "key": rel(key, base),
        "cert": rel(cert, base),
        "data": rel(data, base),
        "state": None if state is None else rel(state, base),
        "audit_log": None if audit_log is None else rel(audit_log, base),
        "linkage_key": None if linkage_key is None else rel(linkage_key, base),
    }
    policy = {
        "min_cell_count": min_cell_count,
        "approved_protocols": [rel(p, base) for p in approved_protocols],
        "approved_hashes": list(approved_hashes),
        "max_job_seconds": float(max_job_seconds),
    }
    if allow_partial_jobs:
        policy["allow_partial_jobs"] = True
    if privacy is not None:
        policy.update({key: getattr(privacy, key) for key in PRIVACY_KEYS})
    text = toml_document(
        [
            toml_table("party", party),
            toml_table("policy", policy),
            toml_table("log", {"level": check_log_level(log_level)}),
        ]
    )
    return write_text(path, text)
